using System.Text;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// Decodes a token stream one id at a time. Each <see cref="Push"/> returns only text that is
/// complete: a character whose UTF-8 bytes arrive over several byte-fallback tokens is held back
/// until its last byte, so it is emitted once and never as U+FFFD. One decoder per stream.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly TokenVocabulary _vocabulary;

    // Keeps the bytes of a character not yet complete between pushes.
    private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();

    // The id pushed last (or the one given at creation): decides llama2.c's leading-space rule.
    private int _previousId;

    internal StreamingDecoder(TokenVocabulary vocabulary, int previousId)
    {
        _vocabulary = vocabulary;
        _previousId = previousId;
    }

    /// <summary>Adds one token; returns the text that this token completes (often empty).</summary>
    public string Push(int id)
    {
        ReadOnlySpan<byte> bytes = _vocabulary.DecodedBytes(_previousId, id);
        _previousId = id;
        return Convert(bytes, flush: false);
    }

    /// <summary>Ends the stream: bytes of an unfinished character come out as U+FFFD.</summary>
    public string Flush() => Convert([], flush: true);

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        // Counting first does not change the decoder's state; decoding then takes the bytes in,
        // keeping an unfinished character's bytes for the next push.
        int charCount = _utf8.GetCharCount(bytes, flush);
        Span<char> chars = charCount <= 256 ? stackalloc char[charCount] : new char[charCount];
        int written = _utf8.GetChars(bytes, chars, flush);
        return new string(chars[..written]);
    }
}
