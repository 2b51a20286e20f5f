using Pipeline.Inference.Runtime;

namespace Pipeline.Benchmarks;

/// <summary>One round of a plateau run: its speed and the process's memory once it was over.</summary>
internal sealed record PlateauRound(
    int Round, double WallSeconds, long GeneratedTokens, double TokensPerSecond,
    ProcessMemory After, long KvBytesAfter, long PeakKvBytes, long AllocatedBytes, int Gen2Collections);

/// <summary>The rounds of a plateau run, and whether every round generated the first round's tokens.</summary>
internal sealed record PlateauReport(int Concurrency, int Requests, IReadOnlyList<PlateauRound> Rounds, bool TokensIdentical, ProcessMemory Loaded);

/// <summary>
/// Does memory plateau under a repeated load? One <see cref="PipelineHost"/> (as a server keeps
/// one) serves the same workload <c>rounds</c> times at one concurrency; after each round, once the
/// host has been idle for <c>settle</c>, the process's resident set (VmRSS), its high-water mark
/// (VmHWM) and the managed heap are read. No collection is forced: this is what a server sees.
/// Every round must generate the first round's tokens (same prompts, same seeds).
/// </summary>
internal static class PlateauProbe
{
    public static async Task<PlateauReport> RunAsync(
        LoadedModel model, Workload workload, int concurrency, int rounds, TimeSpan settle,
        IProgress<string>? progress = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);
        var config = model.Decoder.Config;
        var requests = workload.CreateRequests(config.VocabSize, config.SeqLen);
        var loaded = ProcessMemory.Now();
        await using var host = PipelineHost.Start(model, new PipelineHostOptions
        {
            MaxBatch = concurrency,
            AdmissionCapacity = Math.Max(64, concurrency),
        });
        var results = new List<PlateauRound>(rounds);
        List<int>[]? first = null;
        bool identical = true;
        for (int round = 1; round <= rounds; round++)
        {
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
            int gen2Before = GC.CollectionCount(2);
            var traces = requests.Select(r => new RequestTrace(r.Index)).ToArray();
            var wall = await ClientDriver.RunAsync(requests, traces, concurrency, async (request, trace) =>
            {
                var generation = new GenerationRequest
                {
                    PromptIds = request.PromptIds,
                    MaxTokens = workload.MaxTokens,
                    IgnoreEos = workload.IgnoreEos,
                    Seed = request.Seed,
                    Sampling = workload.Sampling,
                };
                await foreach (var e in host.GenerateAsync(generation, ct))
                    if (e.TokenId >= 0) trace.TokenArrived(e.TokenId);
            }, null, ct);
            long tokens = traces.Sum(t => (long)t.CompletionIds.Count);
            if (first is null) first = traces.Select(t => t.CompletionIds).ToArray();
            else identical &= traces.Select((t, i) => t.CompletionIds.SequenceEqual(first[i])).All(same => same);
            await Task.Delay(settle, ct);
            var memory = ProcessMemory.Now();
            var row = new PlateauRound(round, wall.TotalSeconds, tokens, tokens / wall.TotalSeconds, memory, host.KvMemory.Bytes, host.KvMemory.PeakBytes,
                GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore, GC.CollectionCount(2) - gen2Before);
            results.Add(row);
            progress?.Report($"round {round}/{rounds}: {row.TokensPerSecond:F1} tokens/s, RSS {Mb(memory.ResidentBytes):F0} MB, peak {Mb(memory.PeakResidentBytes):F0} MB, managed heap {Mb(memory.ManagedHeapBytes):F0} MB");
        }
        return new PlateauReport(concurrency, requests.Count, results, identical, loaded);
    }

    public static double Mb(long bytes) => bytes / (1024.0 * 1024.0);

    /// <summary>The report as a Markdown table (one row per round).</summary>
    public static string Format(PlateauReport report)
    {
        var lines = new List<string>
        {
            $"model loaded, before the host started: RSS {Mb(report.Loaded.ResidentBytes):F0} MB, peak {Mb(report.Loaded.PeakResidentBytes):F0} MB, managed heap {Mb(report.Loaded.ManagedHeapBytes):F0} MB, GC committed {Mb(report.Loaded.GcCommittedBytes):F0} MB",
            $"{report.Requests} requests at concurrency {report.Concurrency} per round; tokens identical across rounds: {(report.TokensIdentical ? "yes" : "NO")}",
            "",
            "| round | tokens/s | wall s | RSS MB | peak RSS (VmHWM) MB | managed heap MB | GC committed MB | allocated MB | gen 2 GCs | KV after MB | peak KV MB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        };
        foreach (var r in report.Rounds)
            lines.Add($"| {r.Round} | {r.TokensPerSecond:F1} | {r.WallSeconds:F1} | {Mb(r.After.ResidentBytes):F0} | {Mb(r.After.PeakResidentBytes):F0} | {Mb(r.After.ManagedHeapBytes):F0} | {Mb(r.After.GcCommittedBytes):F0} | {Mb(r.AllocatedBytes):F0} | {r.Gen2Collections} | {Mb(r.KvBytesAfter):F2} | {Mb(r.PeakKvBytes):F1} |");
        return string.Join('\n', lines);
    }
}
