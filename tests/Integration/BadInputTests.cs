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

    [Fact]
    public async Task A_prompt_of_several_megabytes_is_refused_naming_the_prompt_and_the_context_before_it_is_tokenized()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance);
        int context = SharedModel.Instance.Decoder.Config.SeqLen;
        var huge = string.Concat(Enumerable.Repeat("Once upon a time there was a dog. ", 120_000)); // about 4 MB
        var error = await Assert.ThrowsAsync<InvalidRequestException>(() => host.CompleteAsync(new GenerationRequest { Prompt = huge }));
        Assert.Equal("prompt", error.ParamName);
        Assert.Contains($"longer than the model's context of {context} tokens can hold", error.Message, StringComparison.Ordinal);
        Assert.Contains("refused before tokenizing", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, host.Counters.PromptsTokenized);

        // A prompt within the bound is tokenized, and refused by its count of tokens.
        var tooLong = await Assert.ThrowsAsync<InvalidRequestException>(() =>
            host.CompleteAsync(new GenerationRequest { Prompt = string.Concat(Enumerable.Repeat("Once upon a time there was a dog. ", 80)) }));
        Assert.Contains("tokens, longer than the model's context", tooLong.Message, StringComparison.Ordinal);
        Assert.Equal(1, host.Counters.PromptsTokenized);
        Assert.Equal(0, host.KvBudget.ReservedBytes);
    }
}
