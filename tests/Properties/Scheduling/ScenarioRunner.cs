using System.Collections.Concurrent;
using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties.Scheduling;

/// <summary>The outcome of one request in a scenario run.</summary>
public sealed record RunOutcome(GenerationResult? Result, Exception? Error);

/// <summary>What a scenario run left behind and saw of the KV budget.</summary>
public sealed record KvAfterRun(long UsedBytes, long LiveCaches, long ReservedBytes, long PeakUsedBytes, long PeakReservedBytes, long BudgetBytes, long Waits);

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

    /// <summary>Runs every request of the scenario concurrently; throws TimeoutException past the liveness bound.</summary>
    public static async Task<(RunOutcome[] Outcomes, KvAfterRun Kv, SeededSchedule Schedule)> RunAsync(
        Scenario s, Func<Scenario, ISchedulingHook, IGenerationSystem> kind)
    {
        var schedule = new SeededSchedule(s.ScheduleSeed, s.YieldPercent, s.DelayPercent, s.SplitPercent);
        var system = kind(s, schedule);
        var outcomes = new RunOutcome[s.Requests.Length];
        try
        {
            var tasks = s.Requests.Select((r, i) => Task.Run(async () => outcomes[i] = await RunOneAsync(system, r))).ToArray();
            await Task.WhenAll(tasks).WaitAsync(LivenessBound);
        }
        finally
        {
            await system.DisposeAsync().AsTask().WaitAsync(LivenessBound);
        }
        var kv = new KvAfterRun(system.KvMemory.Bytes, system.KvMemory.LiveCaches, system.KvBudget.ReservedBytes,
            system.KvMemory.PeakBytes, system.KvBudget.PeakReservedBytes, system.KvBudget.Bytes, system.KvBudget.Waits);
        return (outcomes, kv, schedule);
    }

    private static async Task<RunOutcome> RunOneAsync(IGenerationSystem system, RequestCase r)
    {
        if (r.ArrivalMs > 0) await Task.Delay(r.ArrivalMs);
        using var cancel = new CancellationTokenSource();
        try
        {
            if (r.CancelAfterTokens == 0) cancel.Cancel();
            var handle = system.Submit(r.ToRequest(), cancel.Token);
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
