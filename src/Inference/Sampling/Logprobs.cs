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
        foreach (int id in TopIds(logits, top)) best.Add((id, (float)(logits[id] - logZ)));
        return new SampledLogprobs(chosen, (float)(logits[chosen] - logZ), best);
    }

    /// <summary>
    /// The <paramref name="top"/> ids of highest logit, best first (ties by the smaller id), by
    /// partial selection: one pass over the vocabulary keeping a sorted buffer of at most
    /// <paramref name="top"/> ids (top is at most 20), instead of sorting the whole vocabulary for
    /// every token. NaN counts as lowest, as <see cref="float.CompareTo(float)"/> orders it.
    /// </summary>
    internal static int[] TopIds(ReadOnlySpan<float> logits, int top)
    {
        int k = Math.Min(Math.Max(top, 0), logits.Length);
        var ids = new int[k];
        int count = 0;
        for (int id = 0; id < logits.Length; id++)
        {
            float l = logits[id];
            // Ids arrive in increasing order, so a tie with the worst kept never displaces it.
            if (count == k && (k == 0 || l.CompareTo(logits[ids[k - 1]]) <= 0)) continue;
            int at = count < k ? count++ : k - 1;
            while (at > 0 && l.CompareTo(logits[ids[at - 1]]) > 0)
            {
                ids[at] = ids[at - 1];
                at--;
            }
            ids[at] = id;
        }
        return ids;
    }
}
