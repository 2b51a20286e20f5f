using System.Globalization;
using System.Text;
using Pipeline.Inference.Tokenization.Bpe;

namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>
/// A <c>tokenizer.json</c> decoder turned into per-token bytes, so that streaming one token at a
/// time gives exactly what decoding the whole sequence gives. Supported: <c>ByteLevel</c>,
/// <c>Replace</c>, <c>ByteFallback</c>, <c>Fuse</c>, <c>Strip</c>, <c>Metaspace</c> and
/// <c>Sequence</c>. A Strip after Fuse (or Metaspace's prefix removal) acts once, at the start of
/// the text: that is <see cref="StartStripCount"/>. Immutable.
/// </summary>
internal sealed class TokenDecoder
{
    private readonly Func<TokenText, TokenText>[] _steps;

    private TokenDecoder(Func<TokenText, TokenText>[] steps, int startStripCount)
    {
        _steps = steps;
        StartStripCount = startStripCount;
    }

    /// <summary>How many leading spaces the decoder removes from the start of the whole text.</summary>
    public int StartStripCount { get; }

    /// <summary>A token on its way through the decoder: text, or bytes once a step produced them.</summary>
    private readonly record struct TokenText(string? Text, byte[]? Bytes);

    public static TokenDecoder Read(JsonComponent component)
    {
        var steps = new List<Func<TokenText, TokenText>>();
        bool fused = false;
        int startStrip = 0;
        if (!component.IsNull)
        {
            Add(component, steps, ref fused, ref startStrip);
        }

        return new TokenDecoder([.. steps], startStrip);
    }

    /// <summary>The bytes one token's piece decodes to, inside a text.</summary>
    public byte[] Bytes(string piece)
    {
        var token = new TokenText(piece, null);
        foreach (var step in _steps)
        {
            token = step(token);
        }

        return token.Bytes ?? Encoding.UTF8.GetBytes(token.Text!);
    }

    /// <summary>The bytes a token adds first in a text: <paramref name="bytes"/> less the leading spaces the decoder strips there.</summary>
    public byte[] BytesAtStart(byte[] bytes)
    {
        int skip = 0;
        while (skip < StartStripCount && skip < bytes.Length && bytes[skip] == (byte)' ')
        {
            skip++;
        }

        return skip == 0 ? bytes : bytes[skip..];
    }

    private static void Add(JsonComponent c, List<Func<TokenText, TokenText>> steps, ref bool fused, ref int startStrip)
    {
        switch (c.Type)
        {
            case "Sequence":
                foreach (var inner in c.Items("decoders"))
                {
                    Add(inner, steps, ref fused, ref startStrip);
                }

                break;
            case "ByteLevel":
                steps.Add(static t => t.Text is null ? t : new TokenText(null, ByteLevelAlphabet.TryDecode(t.Text, out var bytes) ? bytes : Encoding.UTF8.GetBytes(t.Text)));
                break;
            case "Replace":
                var replace = TextNormalizer.ReadReplace(c);
                steps.Add(t => t.Text is null ? t : new TokenText(replace(t.Text), null));
                break;
            case "ByteFallback":
                steps.Add(static t => t.Text is { Length: 6 } s && s.StartsWith("<0x", StringComparison.Ordinal) && s[5] == '>'
                    && byte.TryParse(s.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b)
                    ? new TokenText(null, [b])
                    : t);
                break;
            case "Fuse":
                fused = true;
                break;
            case "Strip":
                string content = c.RequiredString("content");
                int start = c.Int("start", absent: 0);
                int stop = c.Int("stop", absent: 0);
                if (fused)
                {
                    // On the fused text: only a leading strip of spaces can be done token by token.
                    if (stop != 0 || content != " ")
                    {
                        throw new NotSupportedException($"'{c.File}': {c.Part} strips \"{content}\" from the end of the whole text, which cannot be streamed.");
                    }

                    startStrip += start;
                }
                else
                {
                    steps.Add(t => t.Text is null ? t : new TokenText(StripEach(t.Text, content, start, stop), null));
                }

                break;
            case "Metaspace":
                string replacement = c.OptionalString("replacement") ?? "\u2581";
                string scheme = c.OptionalString("prepend_scheme") ?? (c.Bool("add_prefix_space", absent: true) ? "always" : "never");
                steps.Add(t => t.Text is null ? t : new TokenText(t.Text.Replace(replacement, " ", StringComparison.Ordinal), null));
                if (scheme != "never")
                {
                    startStrip += 1;
                }

                break;
            default:
                throw c.Unsupported();
        }
    }

    private static string StripEach(string text, string content, int start, int stop)
    {
        int from = 0;
        int to = text.Length;
        for (int i = 0; i < start && text.AsSpan(from, to - from).StartsWith(content, StringComparison.Ordinal); i++)
        {
            from += content.Length;
        }

        for (int i = 0; i < stop && text.AsSpan(from, to - from).EndsWith(content, StringComparison.Ordinal); i++)
        {
            to -= content.Length;
        }

        return text[from..to];
    }
}
