using System.Collections.Concurrent;
using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties.Scheduling;

/// <summary>The outcome of one request in a scenario run.</summary>
public sealed record RunOutcome(GenerationResult? Result, Exception? Error);

/// <summary>
/// One scenario run: each request's outcome, KV memory once every request had ended and again
/// after the host stopped, the schedule that was followed, where in-pipeline cancellations
/// landed (by request index; only requests that did end cancelled), which requests shared a
/// call or draw that was made to fail, and where the planned failures happened.
/// </summary>
internal sealed record ScenarioRun(
    RunOutcome[] Outcomes, long KvBytesEnded, long LiveCachesEnded, long KvBytesAfter, long LiveCachesAfter,
    SeededSchedule Schedule, IReadOnlyDictionary<int, CancelStage> CancelledAt,
    IReadOnlySet<int> FailedByInjection, IReadOnlyDictionary<int, FailStage> FailedAt,
    long ReservedBytesAfter, long PeakUsedBytes, long PeakReservedBytes, long BudgetBytes, long KvWaits)
{
    /// <summary>Whether request <paramref name="index"/> ended with an error the scenario made (its call or draw was made to fail).</summary>
    public bool FailedAsInjected(int index) =>
        FailedByInjection.Contains(index) && Outcomes[index].Error is { } e
        && (e.Message + e.InnerException?.Message).Contains(StageCanceller.InjectedFailure, StringComparison.Ordinal);
}

/// <summary>Runs scenarios against a generation system and solo references.</summary>
internal static class ScenarioRunner
{
    public static readonly TimeSpan LivenessBound = TimeSpan.FromSeconds(60);

    private static readonly Lazy<LoadedModel> OneThread = new(() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1 }));
    private static readonly Lazy<LoadedModel> TwoThreads = new(() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 2 }));
    private static readonly ConcurrentDictionary<string, GenerationResult> SoloMemo = new();

    public static LoadedModel Model(int threads) => threads <= 1 ? OneThread.Value : TwoThreads.Value;

    public static IGenerationSystem Real(Scenario s, ISchedulingHook hook)
    {
        var model = Model(s.Threads);
        return new RealPipeline(PipelineHost.Start(model, new PipelineHostOptions
        {
            Settings = s.Settings(hook),
            KvBudgetBytes = s.KvBudgetPositions * KvCache.BytesPerPosition(model.Decoder.Config),
        }));
    }

    /// <summary>The real pipeline on a model the caller loaded (and owns).</summary>
    public static Func<Scenario, ISchedulingHook, IGenerationSystem> RealOn(LoadedModel model) =>
        (s, hook) => new RealPipeline(PipelineHost.Start(model, new PipelineHostOptions { Settings = s.Settings(hook) }));

    /// <summary>The real pipeline on the Hugging Face-layout Qwen2 test model.</summary>
    public static IGenerationSystem RealOnHuggingFaceLayout(Scenario s, ISchedulingHook hook) =>
        new RealPipeline(PipelineHost.Start(HuggingFaceLayoutModel.Qwen2.Loaded(s.Threads), new PipelineHostOptions { Settings = s.Settings(hook) }));

    public static IGenerationSystem SharedGenerator(Scenario s, ISchedulingHook hook) =>
        new SharedGeneratorPipeline(PipelineHost.Start(Model(s.Threads), new PipelineHostOptions { Settings = s.Settings(hook) }));

    /// <summary>The request run alone, on its own fresh system of the same kind, one thread, batch 1.</summary>
    public static GenerationResult Solo(RequestCase r, Func<Scenario, ISchedulingHook, IGenerationSystem> kind, bool memoize)
    {
        GenerationResult Run()
        {
            var alone = new Scenario([r], 1, 1, [8, 8, 8, 8, 1, 8], 1, 0, 0, 0, 0);
            var system = kind(alone, NoSchedulingHook.Instance);
            try { return system.Submit(r.ToRequest(), CancellationToken.None).Result.GetAwaiter().GetResult(); }
            finally { system.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        }
        return memoize ? SoloMemo.GetOrAdd(r.Key, _ => Run()) : Run();
    }

    /// <summary>
    /// Runs every request of the scenario concurrently; throws TimeoutException past the liveness
    /// bound. KV memory is read twice: once every request has ended (each actor releases a cache
    /// before it ends its request, so it must read zero already) and after the host stopped.
    /// </summary>
    public static async Task<ScenarioRun> RunAsync(Scenario s, Func<Scenario, ISchedulingHook, IGenerationSystem> kind)
    {
        var schedule = new SeededSchedule(s.ScheduleSeed, s.YieldPercent, s.DelayPercent, s.SplitPercent);
        var canceller = new StageCanceller(schedule);
        var system = kind(s, canceller);
        var outcomes = new RunOutcome[s.Requests.Length];
        long kvBytesEnded, liveCachesEnded;
        try
        {
            var tasks = s.Requests.Select((r, i) => Task.Run(async () => outcomes[i] = await RunOneAsync(system, r, i, canceller))).ToArray();
            await Task.WhenAll(tasks).WaitAsync(LivenessBound);
            kvBytesEnded = system.KvMemory.Bytes;
            liveCachesEnded = system.KvMemory.LiveCaches;
        }
        finally
        {
            await system.DisposeAsync().AsTask().WaitAsync(LivenessBound);
        }
        // A stage counts as cancelled at only where the request did end cancelled.
        var landed = canceller.Landed()
            .Where(l => outcomes[l.Key] is { } o && (o.Error is OperationCanceledException || o.Result?.FinishReason == FinishReason.Cancelled))
            .ToDictionary(l => l.Key, l => l.Value);
        return new ScenarioRun(outcomes, kvBytesEnded, liveCachesEnded, system.KvMemory.Bytes, system.KvMemory.LiveCaches, schedule, landed,
            canceller.FailedByInjection, canceller.FailedAt,
            system.KvBudget.ReservedBytes, system.KvMemory.PeakBytes, system.KvBudget.PeakReservedBytes, system.KvBudget.Bytes, system.KvBudget.Waits);
    }

    private static async Task<RunOutcome> RunOneAsync(IGenerationSystem system, RequestCase r, int index, StageCanceller canceller)
    {
        if (r.ArrivalMs > 0) await Task.Delay(r.ArrivalMs);
        using var cancel = new CancellationTokenSource();
        try
        {
            if (r.CancelAt is not null || r.FailAt is not null) canceller.Plan(index, r.CancelAt, r.FailAt, cancel);
            if (r.CancelAfterTokens == 0) cancel.Cancel();
            RequestHandle handle;
            // The hook learns this request's id at the admission hand-off, inside the submission.
            canceller.Submitting = index;
            try { handle = system.Submit(r.ToRequest(), cancel.Token); }
            finally { canceller.Submitting = null; }
            canceller.Submitted(index);
            int seen = 0;
            await foreach (var _ in handle.Events.ReadAllAsync())
                if (++seen == r.CancelAfterTokens) cancel.Cancel();
            return new RunOutcome(await handle.Result, null);
        }
        catch (Exception e)
        {
            return new RunOutcome(null, e);
        }
    }

    /// <summary>Null when <paramref name="run"/> has the ids, text, finish reason and logits (bit for bit) of <paramref name="solo"/>.</summary>
    public static string? Difference(GenerationResult solo, GenerationResult run)
    {
        if (!solo.PromptIds.SequenceEqual(run.PromptIds)) return "prompt ids differ";
        if (!solo.CompletionIds.SequenceEqual(run.CompletionIds))
            return $"ids differ: solo [{string.Join(',', solo.CompletionIds)}] vs [{string.Join(',', run.CompletionIds)}]";
        if (solo.Text != run.Text) return "text differs";
        if (solo.FinishReason != run.FinishReason) return $"finish reason {run.FinishReason}, solo {solo.FinishReason}";
        var a = solo.Logits ?? [];
        var b = run.Logits ?? [];
        if (a.Count != b.Count) return "logit step counts differ";
        for (int step = 0; step < a.Count; step++)
            for (int v = 0; v < a[step].Length; v++)
                if (BitConverter.SingleToInt32Bits(a[step][v]) != BitConverter.SingleToInt32Bits(b[step][v]))
                    return $"logits differ at step {step}, token {v}";
        return null;
    }
}
