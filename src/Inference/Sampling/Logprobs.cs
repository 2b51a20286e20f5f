namespace Pipeline.Inference.Sampling;

/// <summary>A chosen token's log-probability and the most likely alternatives, as ids (spelled later, by detokenize).</summary>
internal sealed record SampledLogprobs(int TokenId, float Logprob, IReadOnlyList<(int TokenId, float Logprob)> Top);

/// <summary>Log-probabilities under the model's own distribution (softmax of the raw logits).</summary>
internal static class Logprobs
{
    /// <summary>The log-probability of <paramref name="chosen"/> and the <paramref name="top"/> most likely ids (ties by id).</summary>
    public static SampledLogprobs Of(ReadOnlySpan<float> logits, int chosen, int top)
    {
        float max = float.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        double logZ = max + Math.Log(sum);
        var best = new List<(int, float)>(top);
        if (top > 0)
        {
            var order = Enumerable.Range(0, logits.Length).ToArray();
            var copy = logits.ToArray();
            Array.Sort(order, (a, b) => copy[b] != copy[a] ? copy[b].CompareTo(copy[a]) : a.CompareTo(b));
            foreach (var id in order.Take(top)) best.Add((id, (float)(copy[id] - logZ)));
        }
        return new SampledLogprobs(chosen, (float)(logits[chosen] - logZ), best);
    }
}
