namespace Pipeline.Inference.Sampling;

/// <summary>
/// Uniform numbers as a pure function of (seed, draw index): Philox4x32-10 keyed by the seed and
/// counting by the index. A request's i-th draw never depends on how many draws came before or on
/// which thread made them, so a seeded request replays exactly, alone or batched.
/// </summary>
/// <remarks>
/// Layout, so other implementations can replay the same numbers: key word 0 = low 32 bits of the seed,
/// key word 1 = high 32 bits; counter = (low 32 bits of the index, high 32 bits, 0, 0). The output words
/// X0 (high) and X1 (low) form a 64-bit word whose top 53 bits give the double; the top 24 bits of X0
/// give the float. X2 and X3 are unused.
/// </remarks>
internal static class CounterRandom
{
    private const double DoubleUnit = 1.0 / (1UL << 53);
    private const float SingleUnit = 1.0f / (1 << 24);

    /// <summary>A double in [0, 1) with 53 random bits, for draw <paramref name="drawIndex"/> of <paramref name="seed"/>.</summary>
    public static double NextDouble(ulong seed, long drawIndex)
    {
        var block = BlockFor(seed, drawIndex);
        var word = ((ulong)block.X0 << 32) | block.X1;
        return (word >> 11) * DoubleUnit;
    }

    /// <summary>A float in [0, 1) with 24 random bits, for draw <paramref name="drawIndex"/> of <paramref name="seed"/>.</summary>
    public static float NextSingle(ulong seed, long drawIndex) => (BlockFor(seed, drawIndex).X0 >> 8) * SingleUnit;

    private static Philox4x32Words BlockFor(ulong seed, long drawIndex)
    {
        // Negative indices would alias the top half of the counter space; draws are numbered from 0.
        ArgumentOutOfRangeException.ThrowIfNegative(drawIndex);
        var counter = new Philox4x32Words((uint)drawIndex, (uint)((ulong)drawIndex >> 32), 0, 0);
        return Philox4x32.Block(counter, (uint)seed, (uint)(seed >> 32));
    }
}
