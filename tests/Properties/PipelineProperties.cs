using FsCheck;
using FsCheck.Fluent;
using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;
using Pipeline.Properties.Scheduling;
using Xunit.Abstractions;

namespace Pipeline.Properties;

/// <summary>
/// P1–P3: a request's tokens and logits never depend on what else runs, how the actors
/// interleave, batch sizes, channel capacities or thread counts; every request finishes;
/// cancelling others changes nothing and returns all KV memory. Each property reports what it
/// explored and fails if that is too little to be believed.
/// </summary>
public sealed class PipelineProperties(ITestOutputHelper output)
{
    private static Config Budget(int defaultCases) => Config.QuickThrowOnFailure.WithMaxTest(PropertyBudget.Cases(defaultCases)).WithQuietOnSuccess(true);

    [Fact]
    public void P1_every_completed_request_has_the_ids_and_logits_of_its_solo_run()
    {
        var explored = new Exploration();
        var property = Prop.ForAll(ScenarioGenerators.Arbitrary(maxRequests: 32, maxTokens: 64, cancelOthers: false),
            s => Isolation(s, ScenarioRunner.Real, explored, memoizeSolo: true));
        Check.One(Budget(30), property);
        output.WriteLine($"P1 explored: {explored}");
        Assert.True(explored.DistinctBatchCompositions >= 40 * PropertyBudget.Factor, $"too few batch compositions: {explored}");
        Assert.True(explored.DistinctHandOffOrders >= explored.Cases * 3 / 4, $"too few distinct hand-off orders: {explored}");
    }

    /// <summary>P1 on a system of the caller's kind (the long-run console runs it on CUDA).</summary>
    internal static void P1On(Func<Scenario, ISchedulingHook, IGenerationSystem> kind, int cases, Action<string> log)
    {
        var explored = new Exploration();
        var property = Prop.ForAll(ScenarioGenerators.Arbitrary(maxRequests: 32, maxTokens: 64, cancelOthers: false),
            s => Isolation(s, kind, explored, memoizeSolo: false));
        Check.One(Budget(cases), property);
        log($"P1 explored: {explored}");
        Assert.True(explored.DistinctBatchCompositions >= 40 * PropertyBudget.Factor, $"too few batch compositions: {explored}");
    }

    [Fact]
    public void P1_holds_on_a_hugging_face_layout_qwen2_model_with_biases_and_gqa()
    {
        var explored = new Exploration();
        // Solo runs are not memoized: the memo is keyed by request, and belongs to the embedded model.
        var property = Prop.ForAll(ScenarioGenerators.Arbitrary(maxRequests: 16, maxTokens: 32, cancelOthers: false),
            s => Isolation(s, ScenarioRunner.RealOnHuggingFaceLayout, explored, memoizeSolo: false));
        Check.One(Budget(10), property);
        output.WriteLine($"P1 (Qwen2 layout) explored: {explored}");
        Assert.True(explored.DistinctBatchCompositions >= 10 * PropertyBudget.Factor, $"too few batch compositions: {explored}");
    }

    [Fact]
    public void P2_every_request_finishes_within_the_bound_for_any_capacities()
    {
        var explored = new Exploration();
        var property = Prop.ForAll(ScenarioGenerators.Arbitrary(ScenarioGenerators.Scenario(maxRequests: 16, maxTokens: 24, cancelOthers: true).Select(TightCapacities)),
            s =>
            {
                var run = ScenarioRunner.RunAsync(s, ScenarioRunner.Real);
                bool finished = run.Wait(ScenarioRunner.LivenessBound + TimeSpan.FromSeconds(10));
                if (!finished) return false.Label($"not finished within {ScenarioRunner.LivenessBound}");
                if (run.IsFaulted) return false.Label($"run failed: {run.Exception!.InnerException!.Message}");
                var outcomes = run.Result.Outcomes;
                explored.Record(run.Result, s);
                if (run.Result.KvBytesAfter != 0 || run.Result.LiveCachesAfter != 0)
                    return false.Label($"KV memory not returned: {run.Result.KvBytesAfter} bytes in {run.Result.LiveCachesAfter} caches");
                var lost = outcomes.Select((o, i) => (o, i))
                    .Where(x => x.o is null || (x.o.Result is null && x.o.Error is not OperationCanceledException && !run.Result.FailedAsInjected(x.i))).ToArray();
                return (lost.Length == 0).Label($"lost requests: {string.Join(", ", lost.Select(x => $"r{x.i}: {x.o?.Error?.Message ?? "no outcome"}"))}");
            });
        Check.One(Budget(30), property);
        output.WriteLine($"P2 explored: {explored}");
        Assert.True(explored.DistinctHandOffOrders >= explored.Cases * 3 / 4, $"too few distinct hand-off orders: {explored}");
    }

    [Fact]
    public void P3_cancelling_or_failing_any_subset_at_any_stage_leaves_the_rest_unchanged_and_returns_all_kv_memory()
    {
        var explored = new Exploration();
        var property = Prop.ForAll(ScenarioGenerators.Arbitrary(maxRequests: 16, maxTokens: 48, cancelOthers: true),
            s => Isolation(s, ScenarioRunner.Real, explored, memoizeSolo: true));
        Check.One(Budget(36), property);
        output.WriteLine($"P3 explored: {explored}");
        Assert.True(explored.Cancelled >= 10 * PropertyBudget.Factor, $"too few cancellations: {explored}");
        Assert.True(explored.DistinctBatchCompositions >= 20 * PropertyBudget.Factor, $"too few batch compositions: {explored}");
        // Every stage of a request's life was cancelled at, and seen to end cancelled, more than once.
        foreach (var stage in Enum.GetValues<CancelStage>())
            Assert.True(explored.CancelledAt(stage) >= MinimumCancellationsPerStage * PropertyBudget.Factor, $"too few cancellations at {stage}: {explored}");
        // And every kind of work was made to fail: its requests end with the error, the rest as solo, KV back to zero.
        foreach (var stage in Enum.GetValues<FailStage>())
            Assert.True(explored.FailedAt(stage) >= MinimumCancellationsPerStage * PropertyBudget.Factor, $"too few failures at {stage}: {explored}");
    }

    /// <summary>
    /// P7: under a KV budget small enough that requests must wait for each other's memory, every
    /// request still completes with the ids and logits of its solo run, and the budget is never
    /// exceeded, neither reserved nor used.
    /// </summary>
    [Fact]
    public void P7_under_a_small_kv_budget_every_request_waits_its_turn_and_has_the_ids_and_logits_of_its_solo_run()
    {
        var explored = new Exploration();
        var property = Prop.ForAll(ScenarioGenerators.Arbitrary(ScenarioGenerators.WithKvBudget(ScenarioGenerators.Scenario(maxRequests: 16, maxTokens: 64, cancelOthers: true))),
            s => Isolation(s, ScenarioRunner.Real, explored, memoizeSolo: true));
        Check.One(Budget(20), property);
        output.WriteLine($"P7 explored: {explored}");
        Assert.True(explored.KvWaits >= 20 * PropertyBudget.Factor, $"too few waits for KV budget: {explored}");
        Assert.True(explored.DistinctBatchCompositions >= 20 * PropertyBudget.Factor, $"too few batch compositions: {explored}");
    }

    private const int MinimumCancellationsPerStage = 3;

    [Fact]
    public void The_checker_finds_a_counterexample_in_a_pipeline_whose_requests_share_one_random_generator()
    {
        var explored = new Exploration();
        var property = Prop.ForAll(ScenarioGenerators.Arbitrary(maxRequests: 8, maxTokens: 16, cancelOthers: false),
            s => Isolation(s, ScenarioRunner.SharedGenerator, explored, memoizeSolo: false));
        var failure = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(100).WithQuietOnSuccess(true), property));
        Assert.NotNull(failure);
        output.WriteLine(failure!.Message);
        Assert.Contains("Falsifiable", failure.Message);
    }

    private static Scenario TightCapacities(Scenario s) => s with { Capacities = s.Capacities.Select(c => Math.Min(c, 2)).ToArray() };

    private static Property Isolation(Scenario s, Func<Scenario, ISchedulingHook, IGenerationSystem> kind, Exploration explored, bool memoizeSolo)
    {
        var run = ScenarioRunner.RunAsync(s, kind).GetAwaiter().GetResult();
        var outcomes = run.Outcomes;
        explored.Record(run, s);
        // Every actor releases a cache before it ends its request: zero as soon as all have ended, and after the host stopped.
        if (run.KvBytesEnded != 0 || run.LiveCachesEnded != 0) return false.Label($"KV memory not returned when every request had ended: {run.KvBytesEnded} bytes in {run.LiveCachesEnded} caches");
        if (run.KvBytesAfter != 0 || run.LiveCachesAfter != 0) return false.Label($"KV memory not returned after the host stopped: {run.KvBytesAfter} bytes in {run.LiveCachesAfter} caches");
        if (run.ReservedBytesAfter != 0) return false.Label($"KV budget not returned: {run.ReservedBytesAfter} bytes still reserved");
        if (run.PeakUsedBytes > run.BudgetBytes || run.PeakReservedBytes > run.BudgetBytes)
            return false.Label($"KV budget of {run.BudgetBytes} bytes exceeded: peak used {run.PeakUsedBytes}, peak reserved {run.PeakReservedBytes}");
        for (int i = 0; i < s.Requests.Length; i++)
        {
            var r = s.Requests[i];
            var o = outcomes[i];
            if (o.Error is not null)
            {
                if (r.MayBeCancelled && o.Error is OperationCanceledException) continue;
                if (run.FailedAsInjected(i)) continue; // its call or draw was made to fail: it ends with that error

                return false.Label($"r{i} failed: {o.Error.GetType().Name}: {o.Error.Message}");
            }
            if (o.Result!.FinishReason == FinishReason.Cancelled)
            {
                if (!r.MayBeCancelled) return false.Label($"r{i} was cancelled but nobody cancelled it");
                continue;
            }
            var solo = ScenarioRunner.Solo(r, kind, memoizeSolo);
            if (ScenarioRunner.Difference(solo, o.Result) is { } difference) return false.Label($"r{i}: {difference}");
        }
        return true.ToProperty();
    }
}
