using System.Globalization;
using System.Text;

namespace Pipeline.Server.Metrics;

/// <summary>
/// A Prometheus histogram of durations in seconds with fixed bucket bounds. Lock-free: each
/// observation increments one bucket, the count and the sum with Interlocked; a scrape may see
/// an observation in the count a moment before its bucket, which Prometheus tolerates.
/// </summary>
internal sealed class PrometheusHistogram(string name, string help, IReadOnlyList<double> upperBoundsSeconds)
{
    /// <summary>Bounds from a fast decode step (a millisecond) to a queued request (tens of seconds).</summary>
    public static readonly IReadOnlyList<double> DefaultBounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    // Per bucket (not cumulative) counts; the last slot is +Inf.
    private readonly long[] _buckets = new long[upperBoundsSeconds.Count + 1];
    private long _count;
    // The sum in microseconds: an integer so it can be added atomically.
    private long _sumMicroseconds;

    public long Count => Interlocked.Read(ref _count);

    public void Observe(TimeSpan duration)
    {
        double seconds = duration.TotalSeconds;
        int bucket = 0;
        while (bucket < upperBoundsSeconds.Count && seconds > upperBoundsSeconds[bucket]) bucket++;
        Interlocked.Increment(ref _buckets[bucket]);
        Interlocked.Add(ref _sumMicroseconds, (long)(duration.Ticks / (TimeSpan.TicksPerMillisecond / 1000)));
        Interlocked.Increment(ref _count);
    }

    public void WriteTo(StringBuilder text)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(" histogram\n");
        long cumulative = 0;
        for (int i = 0; i <= upperBoundsSeconds.Count; i++)
        {
            cumulative += Interlocked.Read(ref _buckets[i]);
            string le = i < upperBoundsSeconds.Count ? upperBoundsSeconds[i].ToString(CultureInfo.InvariantCulture) : "+Inf";
            text.Append(name).Append("_bucket{le=\"").Append(le).Append("\"} ").Append(cumulative).Append('\n');
        }
        double sum = Interlocked.Read(ref _sumMicroseconds) / 1e6;
        text.Append(name).Append("_sum ").Append(sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        text.Append(name).Append("_count ").Append(cumulative).Append('\n');
    }
}
