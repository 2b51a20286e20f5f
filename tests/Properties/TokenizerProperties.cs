using FsCheck.Xunit;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Properties;

/// <summary>Round trips and encoder agreement over arbitrary valid text. Failures print a replay seed.</summary>
[Properties(Arbitrary = [typeof(TextGenerators)], MaxTest = 500)]
public sealed class TokenizerProperties
{
    private static readonly string Tok512Path = Path.Combine(RepoPaths.ModelDir, "tok512.bin");
    private static readonly Tokenizer Tokenizer = Tokenizer.Load(Tok512Path);
    private static readonly TokenVocabulary Vocabulary = TokenVocabulary.Read(Tok512Path);
    private static readonly Llama2cEncoder Llama2c = new(Vocabulary);
    private static readonly SentencePieceEncoder SentencePiece = SentencePieceEncoder.Create(Vocabulary);

    [Property]
    public void Decode_OfEncodeWithBos_GivesTextBack(PrintableText text)
    {
        Assert.Equal(text.Value, Tokenizer.Decode(Tokenizer.Encode(text.Value, addSpecial: true)));
    }

    [Property]
    public void StreamingDecoder_PushingIdsOneByOne_GivesWholeDecodeWithoutReplacementCharacters(PrintableText text)
    {
        var ids = Tokenizer.Encode(text.Value, addSpecial: true);
        var decoder = Tokenizer.CreateStreamingDecoder(ids[0]);

        var deltas = ids.Skip(1).Select(decoder.Push).Append(decoder.Flush()).ToList();

        Assert.Equal(Tokenizer.Decode(ids), string.Concat(deltas));
        Assert.DoesNotContain(deltas, d => d.Contains('\uFFFD'));
    }

    [Property(MaxTest = 5000)]
    public void Llama2cEncoder_AndSentencePieceEncoder_GiveIdenticalIds(PrintableText text)
    {
        Assert.Equal(Llama2c.Encode(text.Value, addBos: true), SentencePiece.Encode(text.Value, addBos: true));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("   ")]
    [InlineData("  two leading spaces")]
    [InlineData("trailing spaces  ")]
    [InlineData("inner   spaces")]
    [InlineData("\t tab\r\n")]
    [InlineData("\n<s>\n")]
    [InlineData("<s></s><unk><0x0A>")]
    [InlineData("\u00a0non-breaking\u200a")]
    [InlineData("Once upon a time")]
    public void Llama2cEncoder_AndSentencePieceEncoder_GiveIdenticalIdsForEdgeCases(string text)
    {
        Assert.Equal(Llama2c.Encode(text, addBos: true), SentencePiece.Encode(text, addBos: true));
        Assert.Equal(Llama2c.Encode(text, addBos: false), SentencePiece.Encode(text, addBos: false));
    }

    [Fact]
    public void SentencePieceEncoder_WhitespaceMarkerInText_ByteFallsBackLikeLlama2c()
    {
        // The dummy prefix " " (410), then U+2581's three UTF-8 bytes E2 96 81 as byte pieces.
        Assert.Equal([1, 410, 229, 153, 132], Llama2c.Encode("\u2581", addBos: true));
        Assert.Equal([1, 410, 229, 153, 132], SentencePiece.Encode("\u2581", addBos: true));
    }

    [Fact]
    public void SentencePieceEncoder_WithUsualWhitespaceMarking_ReadsMarkerAsSpaceUnlikeLlama2c()
    {
        // Why the production model keeps real spaces: with pieces spelt '▁' and escape_whitespaces
        // on, SentencePiece cannot tell a '▁' in the text from an escaped space.
        var marked = SentencePieceEncoder.Create(Vocabulary, markWhitespace: true);

        Assert.Equal([1, 410, 410], marked.Encode("\u2581", addBos: true));
        Assert.Equal(Llama2c.Encode("Once upon a time", addBos: true), marked.Encode("Once upon a time", addBos: true));
    }
}
