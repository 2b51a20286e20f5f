using HdrHistogram;

namespace Pipeline.Benchmarks;

/// <summary>Latencies in microseconds in an HdrHistogram (3 significant digits, up to one hour).</summary>
internal sealed class LatencyHistogram
{
    private readonly LongHistogram _histogram = new(highestTrackableValue: 3_600_000_000L, numberOfSignificantValueDigits: 3);

    public long Count => _histogram.TotalCount;

    public void Record(TimeSpan latency) => _histogram.RecordValue(Math.Max(0L, latency.Ticks / 10));

    /// <summary>The latency at <paramref name="percentile"/> (0–100) in milliseconds; 0 when nothing was recorded.</summary>
    public double PercentileMilliseconds(double percentile) =>
        Count == 0 ? 0 : _histogram.GetValueAtPercentile(percentile) / 1000.0;
}
