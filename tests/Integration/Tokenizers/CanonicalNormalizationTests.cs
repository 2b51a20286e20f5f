using Pipeline.Inference.Tokenization.Unicode;

namespace Pipeline.Integration.Tokenizers;

/// <summary>NFC and NFD on the cases that exercise each part of the algorithm (decomposition, ordering, composition, exclusions, Hangul).</summary>
public sealed class CanonicalNormalizationTests
{
    [Theory]
    [InlineData("e\u0301", "\u00E9")]                      // composition
    [InlineData("caf\u00E9", "caf\u00E9")]                 // already composed
    [InlineData("\u1FEE", "\u0385")]                       // singleton decomposition, then recomposed to the primary composite
    [InlineData("\u212B", "\u00C5")]                       // Angstrom sign -> A with ring
    [InlineData("a\u0301\u0328", "\u0105\u0301")]          // ogonek (class 202) sorts before acute (230), then composes with a
    [InlineData("\u0F9D", "\u0F9C\u0FB7")]                 // composition exclusion stays decomposed
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]           // Hangul L V T -> syllable
    [InlineData("\u0301e", "\u0301e")]                     // a leading combining mark composes with nothing
    [InlineData("\uD835\uDC00", "\uD835\uDC00")]           // astral letter without canonical mapping
    public void ToNfc_gives_the_composed_form(string text, string expected)
    {
        Assert.Equal(expected, CanonicalNormalization.ToNfc(text));
    }

    [Theory]
    [InlineData("\u00E9", "e\u0301")]
    [InlineData("\uAC01", "\u1100\u1161\u11A8")]
    [InlineData("\u0105\u0301", "a\u0328\u0301")]
    public void ToNfd_gives_the_decomposed_form(string text, string expected)
    {
        Assert.Equal(expected, CanonicalNormalization.ToNfd(text));
    }
}
