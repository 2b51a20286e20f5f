using System.Diagnostics;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Sampling;

namespace Pipeline.Benchmarks;

/// <summary>What a long prompt arriving mid-generation does to the sequences already decoding.</summary>
internal sealed record StallReport(
    int Decoding, int LongPromptTokens,
    double BaselineItlP50Ms, double BaselineItlMaxMs,
    double DuringPrefillItlP50Ms, double DuringPrefillItlMaxMs,
    double LongPromptTimeToFirstTokenMs, TimeSpan LongestDecodeGap);

/// <summary>
/// Measures the worst stall a long prompt causes: <c>decoding</c> greedy sequences run, then a
/// prompt of <c>longPromptTokens</c> arrives; the inter-token gaps of the running sequences before
/// and while it is prefilled are compared.
/// </summary>
internal static class StallProbe
{
    public static async Task<StallReport> RunAsync(LoadedModel model, int decoding, int longPromptTokens, CancellationToken ct = default)
    {
        var config = model.Decoder.Config;
        if (longPromptTokens + 1 > config.SeqLen) throw new ArgumentException($"long prompt of {longPromptTokens} tokens does not fit the context of {config.SeqLen}");
        await using var host = PipelineHost.Start(model, new PipelineHostOptions { MaxBatch = Math.Max(decoding + 1, 2) });
        var random = new SplitMixRandom(7);
        int[] Prompt(int n) => [1, .. Enumerable.Range(1, n - 1).Select(_ => random.NextInt(3, config.VocabSize))];

        var gaps = new List<(long At, double Ms)>[decoding];
        var firstTokens = new TaskCompletionSource[decoding];
        var running = new Task[decoding];
        int budget = config.SeqLen - 16;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        for (int i = 0; i < decoding; i++)
        {
            int index = i;
            gaps[i] = [];
            firstTokens[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var request = new GenerationRequest { PromptIds = Prompt(8), MaxTokens = budget, Sampling = SamplingOptions.Default, Seed = (ulong)i };
            running[i] = Task.Run(async () =>
            {
                long last = 0;
                try
                {
                    await foreach (var _ in host.GenerateAsync(request, stop.Token))
                    {
                        long now = Stopwatch.GetTimestamp();
                        if (last != 0) gaps[index].Add((now, Stopwatch.GetElapsedTime(last, now).TotalMilliseconds));
                        else firstTokens[index].TrySetResult();
                        last = now;
                    }
                }
                catch (OperationCanceledException) { }
                firstTokens[index].TrySetResult();
            }, CancellationToken.None); // each loop ends itself on the linked token
        }
        await Task.WhenAll(firstTokens.Select(t => t.Task));
        await Task.Delay(300, ct); // a baseline of steady decoding
        long longStart = Stopwatch.GetTimestamp();
        var longResult = await host.CompleteAsync(new GenerationRequest { PromptIds = Prompt(longPromptTokens), MaxTokens = 1, Sampling = SamplingOptions.Greedy }, ct);
        long longFirst = Stopwatch.GetTimestamp();
        await Task.Delay(100, ct);
        stop.Cancel();
        await Task.WhenAll(running);

        var all = gaps.SelectMany(g => g).ToArray();
        var before = all.Where(g => g.At < longStart).Select(g => g.Ms).DefaultIfEmpty(0).ToArray();
        var during = all.Where(g => g.At >= longStart && g.At <= longFirst + Stopwatch.Frequency / 100).Select(g => g.Ms).DefaultIfEmpty(0).ToArray();
        return new StallReport(decoding, longPromptTokens,
            Median(before), before.Max(), Median(during), during.Max(),
            (longResult.Timings.TimeToFirstToken ?? TimeSpan.Zero).TotalMilliseconds, host.Counters.LongestDecodeGap);
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }
}
