namespace Pipeline.Integration;

public sealed class ConcurrentRequestsTests
{
    [Fact]
    public async Task Thirty_two_concurrent_requests_each_produce_the_ids_and_logits_of_their_solo_run()
    {
        var requests = Enumerable.Range(0, 32).Select(Workloads.Varied).ToArray();
        var solo = new GenerationResult[requests.Length];
        for (int i = 0; i < requests.Length; i++) solo[i] = await Workloads.SoloAsync(requests[i]);

        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 32, ChannelCapacity = 4 });
        var together = await Task.WhenAll(requests.Select(r => host.CompleteAsync(r)));

        for (int i = 0; i < requests.Length; i++) Workloads.AssertSameRun(solo[i], together[i], $"request {i}");
        Assert.True(host.Counters.DecodeSteps > 0);
        Assert.Equal(0, host.KvMemory.Bytes);
    }

    [Fact]
    public async Task Concurrent_greedy_requests_reproduce_the_llama2c_reference_ids()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 8 });
        var runs = Workloads.Reference.Select(r => host.CompleteAsync(new GenerationRequest
        {
            PromptIds = r.PromptIds, Sampling = new() { Temperature = 0 }, MaxTokens = 257 - r.PromptIds.Length,
        })).ToArray();
        var results = await Task.WhenAll(runs);
        for (int i = 0; i < results.Length; i++)
        {
            var expected = Workloads.Reference[i].GreedyIds;
            bool stopped = expected[^1] == 1;
            Assert.Equal(stopped ? expected[..^1] : expected, results[i].CompletionIds);
            Assert.Equal(stopped ? Pipeline.FinishReason.Stop : Pipeline.FinishReason.Length, results[i].FinishReason);
        }
    }

    [Fact]
    public async Task A_request_that_ignores_end_tokens_runs_past_them_to_its_max_tokens()
    {
        // A greedy reference run that llama2.c ended at BOS (id 1): the same prompt ignoring end
        // tokens emits that BOS and goes on, beside a request that stops at it.
        var reference = Workloads.Reference.First(r => r.GreedyIds[^1] == 1);
        int stoppedAt = reference.GreedyIds.Length;
        var request = new GenerationRequest { PromptIds = reference.PromptIds, Sampling = new() { Temperature = 0 }, MaxTokens = stoppedAt + 12 };
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 4 });
        var both = await Task.WhenAll(host.CompleteAsync(request), host.CompleteAsync(request with { IgnoreEos = true }));
        var (stops, goesOn) = (both[0], both[1]);

        Assert.Equal(Pipeline.FinishReason.Stop, stops.FinishReason);
        Assert.Equal(reference.GreedyIds[..^1], stops.CompletionIds);
        Assert.Equal(Pipeline.FinishReason.Length, goesOn.FinishReason);
        Assert.Equal(stoppedAt + 12, goesOn.CompletionIds.Count);
        Assert.Equal(reference.GreedyIds, goesOn.CompletionIds.Take(stoppedAt));
        Assert.Equal(0, host.KvMemory.Bytes);
    }

    [Fact]
    public async Task Capacity_one_on_every_channel_still_completes_sixteen_concurrent_requests()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions
        {
            Settings = new Wiring.PipelineSettings { MaxBatch = 16, MaxPrefillBatch = 1 }.WithAllCapacities(1),
        });
        var run = Task.WhenAll(Enumerable.Range(0, 16).Select(i => host.CompleteAsync(Workloads.Varied(i) with { CaptureLogits = false })));
        // Waits on the requests themselves; the bound only turns a deadlock into a loud TimeoutException.
        var results = await run.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.All(results, r => Assert.NotEmpty(r.CompletionIds));
    }

    [Fact]
    public async Task A_streamed_generation_yields_the_same_tokens_and_text_as_the_completed_result()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance);
        var request = Workloads.Varied(5) with { CaptureLogits = false };
        var events = new List<TokenEvent>();
        await foreach (var e in host.GenerateAsync(request)) events.Add(e);
        var result = await host.CompleteAsync(request);
        Assert.Equal(result.CompletionIds, events.Where(e => e.TokenId >= 0).Select(e => e.TokenId));
        Assert.Equal(result.Text, string.Concat(events.Select(e => e.Text)));
    }

    [Fact]
    public async Task A_request_without_a_seed_reports_the_seed_that_replays_it()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance);
        var request = new GenerationRequest { Prompt = "Lily", MaxTokens = 30, Sampling = new() { Temperature = 1f } };
        var first = await host.CompleteAsync(request);
        var replay = await host.CompleteAsync(request with { Seed = first.Seed });
        Assert.Equal(first.CompletionIds, replay.CompletionIds);
    }

    [Fact]
    public async Task Stop_strings_end_generation_and_are_left_out_of_the_text()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance);
        var plain = await host.CompleteAsync(new GenerationRequest { Prompt = "Once upon a time", Sampling = new() { Temperature = 0 }, MaxTokens = 40 });
        Assert.Contains("Lily", plain.Text);
        var stopped = await host.CompleteAsync(new GenerationRequest { Prompt = "Once upon a time", Sampling = new() { Temperature = 0 }, MaxTokens = 40, Stop = ["Lily"] });
        Assert.Equal(Pipeline.FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(plain.Text[..plain.Text.IndexOf("Lily", StringComparison.Ordinal)], stopped.Text);
        var streamed = new List<TokenEvent>();
        await foreach (var e in host.GenerateAsync(new GenerationRequest { Prompt = "Once upon a time", Sampling = new() { Temperature = 0 }, MaxTokens = 40, Stop = ["Lily"] })) streamed.Add(e);
        Assert.Equal(stopped.Text, string.Concat(streamed.Select(e => e.Text)));
    }
}
