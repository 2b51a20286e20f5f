using Pipeline.Inference.Sampling;

namespace Pipeline.Integration;

public sealed class BadInputTests
{
    public static TheoryData<string, GenerationRequest> BadRequests() => new()
    {
        { "prompt", new GenerationRequest { Prompt = string.Concat(Enumerable.Repeat("Once upon a time there was a dog. ", 80)) } },
        { "max_tokens", new GenerationRequest { Prompt = "Lily", MaxTokens = 0 } },
        { "max_tokens", new GenerationRequest { Prompt = "Lily", MaxTokens = -3 } },
        { "temperature", new GenerationRequest { Prompt = "Lily", Sampling = new() { Temperature = -0.5f } } },
        { "temperature", new GenerationRequest { Prompt = "Lily", Sampling = new() { Temperature = float.NaN } } },
        { "top_p", new GenerationRequest { Prompt = "Lily", Sampling = new() { TopP = 0f } } },
        { "top_p", new GenerationRequest { Prompt = "Lily", Sampling = new() { TopP = 1.5f } } },
        { "top_p", new GenerationRequest { Prompt = "Lily", Sampling = new() { TopP = float.NaN } } },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_bad_request_fails_alone_with_an_error_naming_the_option(string option, GenerationRequest bad)
    {
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 4 });
        var good = Enumerable.Range(0, 3).Select(i => host.CompleteAsync(Workloads.Varied(i) with { CaptureLogits = false })).ToArray();
        var error = await Assert.ThrowsAsync<InvalidRequestException>(() => host.CompleteAsync(bad));
        Assert.Equal(option, error.ParamName);
        Assert.Contains(option, error.Message);
        foreach (var r in await Task.WhenAll(good)) Assert.NotEmpty(r.CompletionIds);
        Assert.Equal(0, host.KvMemory.Bytes);
    }

    [Fact]
    public async Task A_full_admission_queue_rejects_with_a_busy_error_when_asked_to()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions
        {
            RejectWhenFull = true,
            AdmissionCapacity = 1,
            Settings = new Wiring.PipelineSettings { MaxBatch = 1, MaxPrefillBatch = 1 }.WithAllCapacities(1),
        });
        var attempts = Enumerable.Range(0, 32)
            .Select(_ => host.CompleteAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 100, Sampling = new() { Temperature = 0 } }))
            .ToArray();
        int busy = 0, completed = 0;
        foreach (var attempt in attempts)
        {
            try { await attempt; completed++; }
            catch (PipelineBusyException e) { busy++; Assert.Contains("busy", e.Message); }
        }
        Assert.True(busy > 0, "no request was rejected although 32 arrived at a queue of 1");
        Assert.True(completed > 0, "the admitted requests did not complete");
        Assert.Equal(0, host.KvMemory.Bytes);
    }
}
