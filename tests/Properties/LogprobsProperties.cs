using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Pipeline.Inference.Sampling;

namespace Pipeline.Properties;

/// <summary>The top log-probability alternatives, chosen by partial selection, are exactly those a full sort would give.</summary>
public sealed class LogprobsProperties
{
    // Small integer logits make ties common: the order among equal logits (smaller id first) is part of the contract.
    private static readonly Arbitrary<(float[] Logits, int Top)> Cases = Arb.From(
        from logits in Gen.Choose(-4, 4).Select(i => (float)i).ArrayOf().Where(a => a.Length > 0)
        from top in Gen.Choose(0, 25)
        select (logits, top));

    [Property]
    public Property TopIds_are_the_first_ids_of_a_full_sort_by_logit_then_id() =>
        Prop.ForAll(Cases, c =>
        {
            var expected = Enumerable.Range(0, c.Logits.Length)
                .OrderByDescending(id => c.Logits[id]).ThenBy(id => id)
                .Take(c.Top).ToArray();
            return Logprobs.TopIds(c.Logits, c.Top).SequenceEqual(expected);
        });

    [Fact]
    public void Of_reports_the_top_alternatives_best_first_with_their_log_probabilities()
    {
        float[] logits = [1f, 3f, 2f, 3f];
        var result = Logprobs.Of(logits, chosen: 2, top: 3);
        Assert.Equal([1, 3, 2], result.Top.Select(t => t.TokenId));
        double logZ = Math.Log(logits.Sum(l => Math.Exp(l)));
        Assert.Equal((float)(3 - logZ), result.Top[0].Logprob, 5);
        Assert.Equal((float)(2 - logZ), result.Logprob, 5);
    }
}
