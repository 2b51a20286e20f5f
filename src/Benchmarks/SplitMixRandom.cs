namespace Pipeline.Benchmarks;

/// <summary>
/// A seeded SplitMix64 stream: the same seed gives the same numbers on every machine and .NET
/// version, which System.Random does not promise. Owned by one caller; not thread-safe.
/// </summary>
internal sealed class SplitMixRandom(ulong seed)
{
    private ulong _state = seed;
    // Box–Muller makes normals in pairs; the second waits here for the next call.
    private double? _spareNormal;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [min, max); the modulo bias is below 2^-40 for the ranges used here.</summary>
    public int NextInt(int min, int max) => min + (int)(NextUInt64() % (ulong)(max - min));

    /// <summary>Standard normal (Box–Muller).</summary>
    public double NextNormal()
    {
        if (_spareNormal is { } spare) { _spareNormal = null; return spare; }
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareNormal = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Exponential with the given rate (mean 1/rate): the gaps of a Poisson process.</summary>
    public double NextExponential(double rate) => -Math.Log(1.0 - NextDouble()) / rate;
}
