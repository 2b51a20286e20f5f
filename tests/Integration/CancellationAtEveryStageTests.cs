using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;

namespace Pipeline.Integration;

/// <summary>
/// One request, cancelled (or failed) at exactly one stage of its life, chosen through the
/// scheduling hook; every time, the request ends as it should and KV memory returns to zero.
/// Each KV release in each actor has a test here that fails without it; the release returns the
/// request's reservation to the KV budget as well, so reserved bytes return to zero too.
/// </summary>
public sealed class CancellationAtEveryStageTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // Long enough for several 64-token prefill chunks (the model's context is 512).
    private static readonly string LongPrompt = string.Concat(Enumerable.Repeat("Once upon a time, there was a little girl named Lily who loved to play outside. ", 10));

    private static async Task<(GenerationResult? Result, Exception? Error, PipelineHost Host)> Run(StageHook hook, CancellationTokenSource cancel, string prompt = "Lily", int maxTokens = 40)
    {
        var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { Settings = new PipelineSettings { Hook = hook } });
        var request = new GenerationRequest { Prompt = prompt, MaxTokens = maxTokens, Sampling = new() { Temperature = 0 } };
        try
        {
            var result = await host.CompleteAsync(request, cancel.Token).WaitAsync(Bound);
            return (result, null, host);
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            return (null, e, host);
        }
        finally
        {
            await host.DrainAsync().WaitAsync(Bound);
        }
    }

    private static async Task AssertCancelledAndFreed(StageHook hook, CancellationTokenSource cancel, string prompt = "Lily", int maxTokens = 40)
    {
        var (result, error, host) = await Run(hook, cancel, prompt, maxTokens);
        await using var _ = host;
        Assert.True(cancel.IsCancellationRequested, "the hook never reached the stage it was to cancel at");
        if (error is not null) Assert.IsAssignableFrom<OperationCanceledException>(error);
        else
        {
            Assert.Equal(FinishReason.Cancelled, result!.FinishReason);
            Assert.True(result.CompletionIds.Count < maxTokens);
        }
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvMemory.LiveCaches);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
    }

    [Fact]
    public async Task A_request_cancelled_while_queued_ends_cancelled_without_touching_kv_memory()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnHandOff = (point, _) => { if (point == HandOff.Admitted) cancel.Cancel(); } };
        await AssertCancelledAndFreed(hook, cancel);
    }

    [Fact]
    public async Task A_request_cancelled_while_tokenized_is_dropped_by_prefill_with_its_cache_released()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnHandOff = (point, _) => { if (point == HandOff.Tokenized) cancel.Cancel(); } };
        await AssertCancelledAndFreed(hook, cancel);
    }

    [Fact]
    public async Task A_request_cancelled_between_chunks_of_a_multi_chunk_prefill_ends_cancelled_with_its_cache_released()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnWork = (stage, n) => { if (stage == HandOff.PrefillChunk && n == 2) cancel.Cancel(); } };
        await AssertCancelledAndFreed(hook, cancel, LongPrompt);
        Assert.Equal(2, hook.WorkSeen(HandOff.PrefillChunk)); // cut after its second chunk, before the rest
    }

    [Fact]
    public async Task A_request_cancelled_as_its_prefill_finishes_is_ended_by_sample_with_its_cache_released()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnHandOff = (point, _) => { if (point == HandOff.Prefilled) cancel.Cancel(); } };
        await AssertCancelledAndFreed(hook, cancel);
    }

    [Fact]
    public async Task A_request_cancelled_while_its_decode_step_is_handed_to_sample_is_ended_by_sample_with_its_cache_released()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnHandOff = (point, n) => { if (point == HandOff.Stepped && n == 3) cancel.Cancel(); } };
        await AssertCancelledAndFreed(hook, cancel);
    }

    [Fact]
    public async Task A_request_cancelled_between_decode_steps_leaves_the_batch_with_its_cache_released()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnHandOff = (point, n) => { if (point == HandOff.Sampled && n == 3) cancel.Cancel(); } };
        await AssertCancelledAndFreed(hook, cancel);
    }

    [Fact]
    public async Task A_request_cancelled_during_detokenize_ends_cancelled_with_its_cache_released()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnHandOff = (point, n) => { if (point == HandOff.Delivered && n == 4) cancel.Cancel(); } };
        await AssertCancelledAndFreed(hook, cancel);
    }

    [Theory]
    [InlineData(HandOffName.PrefillChunk)]
    [InlineData(HandOffName.Stepped)]
    [InlineData(HandOffName.Sampled)]
    public async Task A_failing_model_call_or_draw_fails_only_its_request_with_the_error_and_releases_its_cache(HandOffName stage)
    {
        var point = stage switch { HandOffName.PrefillChunk => HandOff.PrefillChunk, HandOffName.Stepped => HandOff.Stepped, _ => HandOff.Sampled };
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnWork = (at, n) => { if (at == point && n == 2) throw new InvalidOperationException($"injected failure at {at}"); } };
        var (result, error, host) = await Run(hook, cancel, LongPrompt);
        await using var _ = host;
        Assert.Null(result);
        Assert.Contains($"injected failure at {point}", error!.Message + error.InnerException?.Message, StringComparison.Ordinal);
        Assert.Equal(0, host.Faults); // a failing call is the request's failure, not the actor's fault
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvMemory.LiveCaches);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
    }

    [Fact]
    public async Task A_request_that_runs_to_max_tokens_releases_its_cache()
    {
        using var cancel = new CancellationTokenSource();
        var (result, _, host) = await Run(new StageHook(), cancel, "Once upon a time", maxTokens: 5);
        await using var _ = host;
        Assert.Equal(FinishReason.Length, result!.FinishReason);
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
    }

    /// <summary>The work stages a test can fail (the hook's point type is internal).</summary>
    public enum HandOffName { PrefillChunk, Stepped, Sampled }
}
