using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;

namespace Pipeline.Integration;

/// <summary>
/// A fault at each actor (injected through the scheduling hook: a throw outside every filter)
/// fails the requests in flight clearly, frees every KV cache and its reservation, is reported by the host, and is
/// followed by a restart, a bounded number of times.
/// </summary>
public sealed class SupervisionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // The hand-off at which each actor is the one handing off (Delivered: detokenize calling the sink).
    private static HandOff PointOf(string actor) => actor switch
    {
        "tokenize" => HandOff.Tokenized,
        "prefill" => HandOff.Prefilled,
        "sample" => HandOff.Sampled,
        "decode" => HandOff.Stepped,
        _ => HandOff.Delivered,
    };

    // What the runtime throws when an allocation fails; the analyzer reserves the type, a test must still throw it.
#pragma warning disable CA2201
    private static Exception OutOfMemory() => new OutOfMemoryException("injected");
#pragma warning restore CA2201

    private static PipelineHost Host(ISchedulingHook hook, int maxRestarts = 3) => PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions
    {
        MaxRestarts = maxRestarts,
        Settings = new PipelineSettings { MaxBatch = 8, Hook = hook },
    });

    private static GenerationRequest Request(int i) => new() { Prompt = i % 2 == 0 ? "Lily" : "Once upon a time", MaxTokens = 24, Seed = (ulong)i, Sampling = new() { Temperature = 0.8f } };

    private static async Task<(GenerationResult? Result, Exception? Error)> Outcome(Task<GenerationResult> run)
    {
        try { return (await run.WaitAsync(Bound), null); }
        catch (Exception e) when (e is not TimeoutException) { return (null, e); }
    }

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + Bound;
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(10);
        }
    }

    [Theory]
    [InlineData("tokenize")]
    [InlineData("prefill")]
    [InlineData("sample")]
    [InlineData("decode")]
    [InlineData("detokenize")]
    public async Task An_out_of_memory_fault_in_an_actor_fails_what_it_held_frees_all_kv_memory_and_the_host_restarts(string actor)
    {
        var hook = new FaultAt(PointOf(actor), OutOfMemory);
        await using var host = Host(hook);
        var requests = Enumerable.Range(0, 6).Select(Request).ToArray();
        var outcomes = await Task.WhenAll(requests.Select(r => Outcome(host.CompleteAsync(r))));
        await WaitFor(() => host.Restarts == 1 && host.FaultReason is null, "the restart");

        Assert.Equal(1, hook.Thrown);
        Assert.Equal(1, host.Faults);
        var failures = outcomes.Where(o => o.Error is not null).Select(o => o.Error!).ToArray();
        Assert.NotEmpty(failures);
        Assert.All(failures, e => Assert.IsType<PipelineUnavailableException>(e));
        Assert.Contains(failures, e => e.Message.Contains($"the {actor} actor failed (OutOfMemoryException: injected) while processing it", StringComparison.Ordinal));
        for (int i = 0; i < requests.Length; i++)
            if (outcomes[i].Result is { } done) Workloads.AssertSameRun(await Workloads.SoloAsync(requests[i]), done, $"request {i}");
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
        Assert.Equal(0, host.KvMemory.LiveCaches);

        // The restarted pipeline serves as before.
        var after = await host.CompleteAsync(requests[0]).WaitAsync(Bound);
        Workloads.AssertSameRun(await Workloads.SoloAsync(requests[0]), after, "after the restart");
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
    }

    [Fact]
    public async Task A_fault_that_recurs_after_every_restart_leaves_the_host_faulted_and_it_refuses_new_requests_at_once()
    {
        var hook = new FaultAt(HandOff.Stepped, () => new InvalidCastException("always"), times: int.MaxValue);
        var host = Host(hook, maxRestarts: 2);
        // Send a request to every pipeline that takes one (each faults at its first decode step)
        // until the host gives up; how many requests that takes depends on timing, not the outcome.
        bool StaysFaulted() => host.FaultReason?.Contains("stays faulted", StringComparison.Ordinal) == true;
        for (int attempt = 0; !StaysFaulted(); attempt++)
        {
            await WaitFor(() => host.FaultReason is null || StaysFaulted(), "a pipeline to take requests or the host to stay faulted");
            if (StaysFaulted()) break;
            var (_, error) = await Outcome(host.CompleteAsync(Request(attempt)));
            if (error is not null) Assert.IsType<PipelineUnavailableException>(error);
            Assert.True(attempt < 20, "the host neither restarted nor stayed faulted after 20 requests");
        }
        Assert.Equal(2, host.Restarts);
        Assert.Equal(3, host.Faults);
        var refused = await Assert.ThrowsAsync<PipelineUnavailableException>(() => host.CompleteAsync(Request(9)));
        Assert.Contains("the decode actor failed (InvalidCastException: always)", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
        await host.DisposeAsync().AsTask().WaitAsync(Bound);
    }

    [Fact]
    public async Task Disposing_a_host_whose_pipeline_just_faulted_does_not_hang_and_frees_all_kv_memory()
    {
        var hook = new FaultAt(HandOff.Prefilled, OutOfMemory, skip: 2);
        var host = Host(hook, maxRestarts: 0);
        var running = Enumerable.Range(0, 8).Select(i => Outcome(host.CompleteAsync(Request(i)))).ToArray();
        await WaitFor(() => host.Faults == 1, "the fault");
        await host.DisposeAsync().AsTask().WaitAsync(Bound);
        var outcomes = await Task.WhenAll(running);
        Assert.Contains(outcomes, o => o.Error is PipelineUnavailableException);
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
        Assert.Equal(0, host.KvMemory.LiveCaches);
    }

    [Fact]
    public async Task A_draining_host_refuses_new_requests_as_unavailable_not_busy()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { RejectWhenFull = true });
        var running = host.CompleteAsync(Request(0));
        var draining = host.DrainAsync();
        Assert.True(host.IsDraining);
        await Assert.ThrowsAsync<PipelineUnavailableException>(() => host.CompleteAsync(Request(1)));
        await draining.WaitAsync(Bound);
        Assert.NotEqual(FinishReason.Cancelled, (await running).FinishReason);
    }
}
