using System.Diagnostics;
using Pipeline.Inference.Runtime;

namespace Pipeline.Benchmarks;

/// <summary>
/// Runs every chosen mode at every concurrency over one shared model and one workload, checks
/// that all runs generated the same tokens, and only then summarises their speed.
/// </summary>
internal static class BenchRunner
{
    private static readonly TimeSpan WorkingSetInterval = TimeSpan.FromMilliseconds(5);

    public static async Task<BenchReport> RunAsync(BenchOptions options, IProgress<BenchProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (options.Concurrency.Count == 0 || options.Concurrency.Any(c => c < 1))
            throw new ArgumentException("concurrency levels must be positive");
        using var model = LoadedModel.Load(options.ModelPath, new RunnerOptions { IntraOpThreads = options.IntraOpThreads, MaxContext = options.ContextLength, Quantize = options.Quantize, UseCuda = options.UseCuda, Shapes = options.Shapes, ResidentKv = options.ResidentKv, Attention = options.Attention, IntraOpSpinning = options.IntraOpSpinning, CudaGraph = options.CudaGraph, SerialPrefill = options.SerialPrefill, ProfilePrefix = options.ProfilePrefix }, options.CacheDirectory);
        var config = model.Decoder.Config;
        var workload = options.Workload;
        var requests = workload.CreateRequests(config.VocabSize, config.SeqLen);
        await WarmUpAsync(model, workload, requests[0], cancellation);

        var runs = new List<(string Run, IReadOnlyList<RequestTrace> Traces)>();
        var measured = new List<(BenchMode Mode, int Concurrency, ModeOutcome Outcome, long PeakWorkingSet)>();
        var phases = new List<Pipeline.Inference.Runtime.Resident.ResidentPhaseTimes.Snapshot?>();
        int runCount = options.Modes.Count * options.Concurrency.Count, runNumber = 0;
        foreach (var mode in options.Modes)
            foreach (int concurrency in options.Concurrency)
            {
                runNumber++;
                int number = runNumber;
                progress?.Report(new BenchProgress(number, runCount, BenchModes.Name(mode), concurrency, 0, requests.Count));
                var traces = requests.Select(r => new RequestTrace(r.Index)).ToArray();
                var context = new ModeContext(model, workload, requests, traces, concurrency,
                    done => progress?.Report(new BenchProgress(number, runCount, BenchModes.Name(mode), concurrency, done, requests.Count)),
                    cancellation) { KvBudgetBytes = options.KvBudgetBytes };
                // Start each run from a collected heap so one run's garbage does not count against the next.
                GC.Collect();
                GC.WaitForPendingFinalizers();
                ModeOutcome outcome;
                long peakWorkingSet;
                var phasesBefore = model.Decoder.ResidentPhases?.Now();
                var gcBefore = (Pause: GC.GetTotalPauseDuration(), Full: GC.CollectionCount(2));
                await using (var monitor = new WorkingSetMonitor(WorkingSetInterval))
                {
                    outcome = await RunModeAsync(mode, context);
                    await monitor.DisposeAsync();
                    peakWorkingSet = monitor.PeakBytes;
                }
                phases.Add(phasesBefore is null ? null : model.Decoder.ResidentPhases!.Now() - phasesBefore);
                runs.Add(($"{BenchModes.Name(mode)}@{concurrency}", traces));
                measured.Add((mode, concurrency, outcome with
                {
                    GcPause = GC.GetTotalPauseDuration() - gcBefore.Pause,
                    FullCollections = GC.CollectionCount(2) - gcBefore.Full,
                }, peakWorkingSet));
            }

        var (compared, differing, firstDifference) = TokenAgreement.Compare(runs, abort: !options.ReportTokenMismatches);
        var results = measured.Select((m, i) => Summarise(m.Mode, m.Concurrency, m.Outcome, m.PeakWorkingSet, runs[i].Traces, phases[i])).ToList();
        return new BenchReport
        {
            Machine = MachineDescription.Current(),
            Model = (options.ModelDescription ?? $"{model.Name} ({Describe(config)})") + $"; provider {Provider(model.Decoder)}, attention {(model.Decoder.Attention == Pipeline.Inference.Onnx.AttentionKernel.GroupQuery ? "group-query" : "blocks")}, batch shapes {model.Decoder.Shapes}, pasts {(model.Decoder.ResidentKv is { } where ? $"resident ({where}{(model.Decoder.CudaGraph ? ", CUDA graphs" : "")}; decode attention {model.Decoder.ResidentAttention}{SmallCalls(model.Decoder)})" : "staged")}",
            Workload = $"{requests.Count} requests, {workload.PromptTokens} prompt tokens, {(workload.IgnoreEos ? "exactly" : "up to")} {workload.MaxTokens} generated{(workload.IgnoreEos ? " (end tokens ignored)" : "")}, arrival {workload.Arrival}, temperature {workload.Sampling.Temperature}, seed {workload.Seed}, intra-op threads {(options.IntraOpThreads == 0 ? "by model size" : options.IntraOpThreads)}, weights {options.Quantize}",
            TokenCheckComparisons = compared,
            TokenMismatches = differing,
            FirstTokenMismatch = firstDifference,
            Results = results,
        };
    }

    /// <summary>The execution provider that runs the graph, with the GPU's name on CUDA, or why CUDA fell back.</summary>
    private static string Provider(DecoderModel decoder) =>
        decoder.ExecutionProvider == "CUDA" ? $"CUDA ({GpuName.Current() ?? "unknown GPU"})"
        : decoder.ProviderFallbackReason is { } why ? $"CPU ({why})" : "CPU";

    // Whether the small decode call runs (the load-time check found its bits equal) or why not.
    private static string SmallCalls(DecoderModel decoder) =>
        decoder.Shapes.SmallDecodeRows == 0 ? ""
        : decoder.RunsSmallDecodeCalls ? $"; {decoder.Shapes.SmallDecodeRows}-row calls where a call's rows fit"
        : $"; no small calls: {decoder.SmallDecodeFallbackReason}";

    public static string Describe(Inference.Models.LlamaConfig c) =>
        $"dim {c.Dim}, layers {c.Layers}, heads {c.Heads}, kv_heads {c.KvHeads}, hidden {c.HiddenDim}, vocab {c.VocabSize}, seq_len {c.SeqLen}, {c.ParameterCount / 1e6:0.##}M parameters";

    private static Task<ModeOutcome> RunModeAsync(BenchMode mode, ModeContext context) => mode switch
    {
        BenchMode.Serial => SerialMode.RunAsync(context),
        BenchMode.GlobalLock => GlobalLockMode.RunAsync(context),
        BenchMode.Pipeline => PipelineMode.RunAsync(context),
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>
    /// The first request through each code path, repeated for about a second, so JIT tiering and
    /// ONNX Runtime's first-call costs land on no measured run.
    /// </summary>
    private static async Task WarmUpAsync(LoadedModel model, Workload workload, BenchRequest request, CancellationToken cancellation)
    {
        var requests = new[] { request with { ArrivalOffset = TimeSpan.Zero, Index = 0 } };
        long start = Stopwatch.GetTimestamp();
        do
        {
            foreach (var mode in BenchModes.All)
                await RunModeAsync(mode, new ModeContext(model, workload, requests, [new RequestTrace(0)], 1, null, cancellation));
        }
        while (Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(1));
    }

    private static ModeResult Summarise(BenchMode mode, int concurrency, ModeOutcome outcome, long peakWorkingSet, IReadOnlyList<RequestTrace> traces,
        Pipeline.Inference.Runtime.Resident.ResidentPhaseTimes.Snapshot? phases)
    {
        var ttft = new LatencyHistogram();
        var itl = new LatencyHistogram();
        long tokens = 0, laterTokens = 0;
        long firstToken = long.MaxValue, lastToken = long.MinValue;
        foreach (var t in traces)
        {
            tokens += t.CompletionIds.Count;
            if (t.TokenTimes.Count == 0) continue;
            laterTokens += t.TokenTimes.Count - 1;
            firstToken = Math.Min(firstToken, t.TokenTimes[0]);
            lastToken = Math.Max(lastToken, t.TokenTimes[^1]);
            ttft.Record(Stopwatch.GetElapsedTime(t.IssuedAt, t.TokenTimes[0]));
            for (int i = 1; i < t.TokenTimes.Count; i++)
                itl.Record(Stopwatch.GetElapsedTime(t.TokenTimes[i - 1], t.TokenTimes[i]));
        }
        double seconds = outcome.Wall.TotalSeconds;
        return new ModeResult
        {
            Mode = BenchModes.Name(mode),
            Concurrency = concurrency,
            TokensPerSecond = tokens / seconds,
            GenerationTokensPerSecond = laterTokens > 0 && lastToken > firstToken ? laterTokens / Stopwatch.GetElapsedTime(firstToken, lastToken).TotalSeconds : 0,
            RequestsPerSecond = traces.Count / seconds,
            TtftP50Ms = ttft.PercentileMilliseconds(50),
            TtftP99Ms = ttft.PercentileMilliseconds(99),
            ItlP50Ms = itl.PercentileMilliseconds(50),
            ItlP99Ms = itl.PercentileMilliseconds(99),
            PeakWorkingSetMb = peakWorkingSet / (1024.0 * 1024.0),
            PeakKvMb = outcome.PeakKvBytes / (1024.0 * 1024.0),
            GeneratedTokens = tokens,
            WallSeconds = seconds,
            DecodeSteps = outcome.Times?.DecodeSteps,
            DecodeRowsPerStep = outcome.Times is { DecodeSteps: > 0 } t1 ? (double)t1.DecodeRows / t1.DecodeSteps : null,
            DecodeCallMs = outcome.Times is { DecodeSteps: > 0 } t2 ? t2.DecodeCalls.TotalMilliseconds / t2.DecodeSteps : null,
            SamplingMs = outcome.Times is { DecodeSteps: > 0 } t3 ? t3.Sampling.TotalMilliseconds / t3.DecodeSteps : null,
            SampledDuringCallPercent = outcome.Times is { DecodeRows: > 0 } t6 ? 100.0 * t6.EarlyRows / t6.DecodeRows : null,
            PrefillCalls = outcome.Times?.PrefillCalls,
            PrefillCallMs = outcome.Times is { PrefillCalls: > 0 } t4 ? t4.PrefillCallTime.TotalMilliseconds / t4.PrefillCalls : null,
            GcPauseMs = outcome.GcPause.TotalMilliseconds,
            FullCollections = outcome.FullCollections,
            ResidentPhases = phases is { PartCalls: > 0 } && outcome.Times is { DecodeSteps: > 0 } t5 ? ResidentPhasesPerStep.Of(phases, t5.DecodeSteps) : null,
        };
    }
}
