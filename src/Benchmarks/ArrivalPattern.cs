using System.Globalization;

namespace Pipeline.Benchmarks;

/// <summary>When requests arrive: all at time zero, or as a Poisson process at a rate per second.</summary>
internal sealed record ArrivalPattern
{
    private ArrivalPattern(double? ratePerSecond) => RatePerSecond = ratePerSecond;

    /// <summary>Requests per second of a Poisson process; null when everything arrives at once.</summary>
    public double? RatePerSecond { get; }

    public static ArrivalPattern AllAtOnce { get; } = new((double?)null);

    public static ArrivalPattern Poisson(double ratePerSecond) =>
        ratePerSecond > 0 && double.IsFinite(ratePerSecond) ? new(ratePerSecond)
            : throw new ArgumentOutOfRangeException(nameof(ratePerSecond), "a Poisson rate must be positive");

    /// <summary>Parses "all" or "poisson:RATE" (requests per second).</summary>
    public static ArrivalPattern Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "all") return AllAtOnce;
        if (t.StartsWith("poisson:", StringComparison.Ordinal)
            && double.TryParse(t["poisson:".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out double rate) && rate > 0)
            return Poisson(rate);
        throw new ArgumentException($"arrival '{text}': use 'all' or 'poisson:RATE' with RATE requests per second > 0");
    }

    /// <summary>Arrival time of each of <paramref name="count"/> requests after the start, from a seeded stream.</summary>
    public TimeSpan[] Offsets(int count, ulong seed)
    {
        var offsets = new TimeSpan[count];
        if (RatePerSecond is not { } rate) return offsets;
        var random = new SplitMixRandom(seed);
        double seconds = 0;
        for (int i = 0; i < count; i++)
        {
            offsets[i] = TimeSpan.FromSeconds(seconds);
            seconds += random.NextExponential(rate);
        }
        return offsets;
    }

    public override string ToString() => RatePerSecond is { } r ? string.Create(CultureInfo.InvariantCulture, $"poisson:{r}") : "all";
}
