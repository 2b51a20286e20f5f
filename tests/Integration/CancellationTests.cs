namespace Pipeline.Integration;

public sealed class CancellationTests
{
    [Fact]
    public async Task Cancelling_half_of_sixteen_running_requests_leaves_the_others_identical_to_solo_and_frees_all_kv_memory()
    {
        var requests = Enumerable.Range(0, 16).Select(i => Workloads.Varied(i) with { MaxTokens = 60 + i, CaptureLogits = true }).ToArray();
        var solo = new GenerationResult[16];
        for (int i = 1; i < 16; i += 2) solo[i] = await Workloads.SoloAsync(requests[i]);

        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 16 });
        var sources = requests.Select(_ => new CancellationTokenSource()).ToArray();
        var streams = requests.Select((r, i) => Consume(host, r, cancelAfter: i % 2 == 0 ? 3 + i : -1, sources[i], sources[i].Token)).ToArray();
        var results = await Task.WhenAll(streams);

        for (int i = 0; i < 16; i++)
        {
            if (i % 2 == 0)
            {
                Assert.Equal(Pipeline.FinishReason.Cancelled, results[i].FinishReason);
                Assert.True(results[i].CompletionIds.Count < requests[i].MaxTokens, $"request {i} ran to the end despite cancellation");
            }
            else
            {
                Workloads.AssertSameRun(solo[i], results[i], $"request {i}");
            }
        }
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvMemory.LiveCaches);
        Assert.Equal(0, host.Counters.ActiveSequences);
    }

    /// <summary>Reads a stream, cancelling after <paramref name="cancelAfter"/> tokens (never when negative), and returns the final result.</summary>
    private static async Task<GenerationResult> Consume(PipelineHost host, GenerationRequest request, int cancelAfter, CancellationTokenSource source, CancellationToken token)
    {
        var handle = host.Submit(request, token);
        // The stream is read to its end: cancellation must end it from the pipeline side.
        int seen = 0;
        await foreach (var _ in handle.Events.ReadAllAsync(CancellationToken.None))
            if (++seen == cancelAfter) source.Cancel();
        return await handle.Result;
    }
}

public sealed class StreamAbandonmentTests
{
    [Fact]
    public async Task A_caller_that_stops_reading_a_stream_early_frees_its_sequence()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance);
        int read = 0;
        await foreach (var _ in host.GenerateAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 400, Sampling = new() { Temperature = 0 } }))
            if (++read == 3) break;
        await host.DrainAsync();
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.True(host.Counters.TokensGenerated < 400, $"the abandoned request ran on to {host.Counters.TokensGenerated} tokens");
    }
}

public sealed class HostDisposalTests
{
    [Fact]
    public async Task Disposing_the_host_ends_every_running_request_as_cancelled_and_frees_all_kv_memory()
    {
        var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 4 });
        var running = Enumerable.Range(0, 12).Select(i => host.CompleteAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 400, Sampling = new() { Temperature = 1 }, Seed = (ulong)i })).ToArray();
        var kv = host.KvMemory;
        await host.DisposeAsync();
        var outcomes = await Task.WhenAll(running.Select(async t =>
        {
            try { return (await t).FinishReason; }
            catch (OperationCanceledException) { return Pipeline.FinishReason.Cancelled; }
        }));
        Assert.All(outcomes, r => Assert.Equal(Pipeline.FinishReason.Cancelled, r));
        Assert.Equal(0, kv.Bytes);
        Assert.Equal(0, kv.LiveCaches);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => host.CompleteAsync(new GenerationRequest { Prompt = "Lily" }));
    }

    [Fact]
    public async Task Draining_the_host_lets_every_admitted_request_finish()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 4 });
        var running = Enumerable.Range(0, 8).Select(i => host.CompleteAsync(new GenerationRequest { Prompt = "Tom", MaxTokens = 20, Sampling = new() { Temperature = 0 } })).ToArray();
        await host.DrainAsync();
        Assert.All(await Task.WhenAll(running), r => Assert.NotEqual(Pipeline.FinishReason.Cancelled, r.FinishReason));
        Assert.Equal(0, host.KvMemory.Bytes);
    }
}
