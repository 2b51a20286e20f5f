using System.Text.Json;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

/// <summary>Requests used across the concurrency tests: greedy and sampled, short and long prompts, varied lengths.</summary>
internal static class Workloads
{
    public static IReadOnlyList<(string Prompt, int[] PromptIds, int[] GreedyIds)> Reference { get; } =
        File.ReadAllLines(Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl"))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Select(r => (r.GetProperty("prompt").GetString()!,
                r.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                r.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()))
            .ToArray();

    private static readonly string[] Prompts =
    [
        "Once upon a time", "Lily", "Tom and his dog went to the park", "", "The sun",
        "One day, a little girl named Sue found a shiny red ball in the garden. She picked it up and ran to her mom. Her mom smiled and said that they could play with it together after lunch, so Sue waited patiently by the window, watching the birds and the trees and the clouds that moved slowly across the big blue sky.",
        "A cat", "Ben wanted to fly",
    ];

    /// <summary>Request <paramref name="i"/> of a varied set (same i → same request).</summary>
    public static GenerationRequest Varied(int i)
    {
        var prompt = Prompts[i % Prompts.Length];
        bool greedy = i % 3 == 0;
        return new GenerationRequest
        {
            Prompt = prompt,
            MaxTokens = 8 + (i * 7) % 57,
            Sampling = new()
            {
                Temperature = greedy ? 0f : 0.6f + (i % 4) * 0.2f,
                TopP = i % 5 == 1 ? 0.9f : 1f,
                TopK = i % 5 == 2 ? 40 : 0,
                MinP = i % 5 == 3 ? 0.05f : 0f,
                RepetitionPenalty = i % 7 == 4 ? 1.2f : 1f,
            },
            Seed = (ulong)(1000 + i),
            CaptureLogits = true,
        };
    }

    public static Task<GenerationResult> SoloAsync(GenerationRequest request) => SoloAsync(request, SharedModel.Instance);

    /// <summary>The request alone (batch 1) on <paramref name="model"/>.</summary>
    public static async Task<GenerationResult> SoloAsync(GenerationRequest request, LoadedModel model)
    {
        await using var host = PipelineHost.Start(model, new PipelineHostOptions { MaxBatch = 1 });
        return await host.CompleteAsync(request);
    }

    /// <summary>
    /// Sixteen varied requests through <paramref name="model"/>'s actors at once, every fifth cancelled
    /// on the first token any of them receives: each completed one must equal <paramref name="solo"/>[i],
    /// and the cancelled ones must give back their KV memory.
    /// </summary>
    /// <summary>Runs <paramref name="requests"/> together (every fifth cancelled on its first token) and checks the rest against <paramref name="solo"/>; returns where the pipeline's time went.</summary>
    public static async Task<Pipeline.Actors.StepTimes> AssertSixteenMatchSoloWhileSomeAreCancelledAsync(LoadedModel model, IReadOnlyList<GenerationRequest> requests, IReadOnlyList<GenerationResult> solo)
    {
        await using var host = PipelineHost.Start(model, new PipelineHostOptions { MaxBatch = 16 });
        using var cancel = new CancellationTokenSource();
        var results = await Task.WhenAll(requests.Select((r, i) => i % 5 == 4 ? CancelledOnFirstToken(host, r, cancel) : host.CompleteAsync(r)));
        Assert.True(cancel.IsCancellationRequested, "no cancelled request received a token");
        for (int i = 0; i < requests.Count; i++)
            if (i % 5 != 4) AssertSameRun(solo[i], results[i], $"request {i}");
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvMemory.LiveCaches);
        return host.Counters.Times;
    }

    private static async Task<GenerationResult> CancelledOnFirstToken(PipelineHost host, GenerationRequest request, CancellationTokenSource cancel)
    {
        try
        {
            await foreach (var _ in host.GenerateAsync(request, cancel.Token)) await cancel.CancelAsync();
        }
        catch (OperationCanceledException) { }
        return null!;
    }

    public static void AssertSameRun(GenerationResult solo, GenerationResult other, string label)
    {
        Assert.True(solo.PromptIds.SequenceEqual(other.PromptIds), $"{label}: prompt ids differ");
        Assert.True(solo.CompletionIds.SequenceEqual(other.CompletionIds), $"{label}: ids differ\n solo  {string.Join(',', solo.CompletionIds)}\n other {string.Join(',', other.CompletionIds)}");
        Assert.Equal(solo.Text, other.Text);
        Assert.Equal(solo.FinishReason, other.FinishReason);
        if (solo.Logits is { } a && other.Logits is { } b)
        {
            Assert.Equal(a.Count, b.Count);
            for (int s = 0; s < a.Count; s++)
                Assert.True(a[s].AsSpan().SequenceEqual(b[s]) && BitIdentical(a[s], b[s]), $"{label}: logits of step {s} differ");
        }
    }

    private static bool BitIdentical(float[] a, float[] b)
    {
        for (int i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) return false;
        return true;
    }
}
