using System.Globalization;
using System.Text;

namespace Pipeline.Benchmarks;

/// <summary>The report as a Markdown table, one row per (mode, concurrency).</summary>
internal static class MarkdownTable
{
    public static string Format(BenchReport report)
    {
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"Machine: {report.Machine}  ");
        s.AppendLine(CultureInfo.InvariantCulture, $"Model: {report.Model}  ");
        s.AppendLine(CultureInfo.InvariantCulture, $"Workload: {report.Workload}  ");
        s.AppendLine(report.TokenMismatches == 0
            ? string.Create(CultureInfo.InvariantCulture, $"Tokens identical across all runs: yes ({report.TokenCheckComparisons} completions compared; a mismatch aborts the bench)")
            : string.Create(CultureInfo.InvariantCulture, $"Tokens identical across all runs: **no**: {report.TokenMismatches} of {report.TokenCheckComparisons} completions differ from the first run's (--token-check report); first: {report.FirstTokenMismatch}"));
        Table(s, "| mode | concurrency | tokens/s | generation tokens/s | requests/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | peak WS MB | peak KV MB |",
            report.Results, r => $"{r.TokensPerSecond:0.0} | {r.GenerationTokensPerSecond:0.0} | {r.RequestsPerSecond:0.00} | {r.TtftP50Ms:0.00} | {r.TtftP99Ms:0.00} | {r.ItlP50Ms:0.000} | {r.ItlP99Ms:0.000} | {r.PeakWorkingSetMb:0} | {r.PeakKvMb:0.00}");
        // Model time per call against the run's wall time: what is left is scheduling, the hops
        // between actors, and time the decode actor had nothing to run.
        Table(s, "| where the time went | concurrency | decode calls | rows per call | decode call ms | between calls (waiting on sample), ms | rows drawn during another call, % | prefill calls | prefill call ms | model + sampling, % of wall (prefill overlaps decode) | GC pauses ms (full collections) |",
            report.Results.Where(r => r.DecodeSteps is > 0), r =>
            {
                double busyMs = r.DecodeSteps!.Value * (r.DecodeCallMs!.Value + r.SamplingMs!.Value) + (r.PrefillCalls ?? 0) * (r.PrefillCallMs ?? 0);
                return $"{r.DecodeSteps} | {r.DecodeRowsPerStep:0.0} | {r.DecodeCallMs:0.000} | {r.SamplingMs:0.000} | {r.SampledDuringCallPercent:0} | {r.PrefillCalls} | {r.PrefillCallMs:0.000} | {100 * busyMs / (r.WallSeconds * 1000):0} | {r.GcPauseMs:0} ({r.FullCollections})";
            });
        var resident = report.Results.Where(r => r.ResidentPhases is not null).ToList();
        // The decode call taken apart: the model's own time is "call"; the rest is host work.
        Table(s, "| resident decode call, ms per call | concurrency | place + uploads | inputs + wait | call | logits back | new positions back | part calls | small calls, % | uploads |",
            resident, r =>
            {
                var p = r.ResidentPhases!;
                return $"{p.PlaceMs:0.000} | {p.InputsMs:0.000} | {p.RunMs:0.000} | {p.LogitsMs:0.000} | {p.AppendMs:0.000} | {p.PartCalls:0.00} | {p.SmallCallsPercent:0} | {p.Uploads:0.00}";
            });
        // What feeds the pool: prefill calls (the model's run, then host copies) and each sequence's upload into its slot.
        Table(s, "| prefill and uploads | concurrency | prefill run, ms per call | prefill host copies, ms per call | upload host, ms each | upload copies, ms each | part rents, ms | write-backs | write-backs, ms |",
            resident, r =>
            {
                var p = r.ResidentPhases!;
                return $"{p.PrefillRunMs:0.000} | {p.PrefillCopiesMs:0.000} | {p.UploadHostMs:0.000} | {p.UploadCopiesMs:0.000} | {p.RentMs:0.0} | {p.WriteBacks} | {p.WriteBackMs:0.0}";
            });
        return s.ToString();
    }

    /// <summary>
    /// A table with <paramref name="header"/>, one row per result (mode and concurrency, then
    /// <paramref name="cells"/>, formatted invariantly), after a blank line; nothing without results.
    /// </summary>
    private static void Table(StringBuilder s, string header, IEnumerable<ModeResult> results, Func<ModeResult, FormattableString> cells)
    {
        var rows = results.ToList();
        if (rows.Count == 0) return;
        s.AppendLine();
        s.AppendLine(header);
        s.AppendLine("|---" + string.Concat(Enumerable.Repeat("|---:", header.Count(ch => ch == '|') - 2)) + "|");
        foreach (var r in rows)
            s.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Mode} | {r.Concurrency} | ") + cells(r).ToString(CultureInfo.InvariantCulture) + " |");
    }
}
