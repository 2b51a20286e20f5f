using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Pipeline.Inference.Tokenization.Bpe;

/// <summary>
/// A pre-tokenizer regex matched over code points, as Rust's and Oniguruma's engines do, where .NET
/// matches UTF-16 units: an emoji's two surrogates would otherwise fail <c>\p{L}</c>-style classes
/// one by one and split words differently from the reference tokenizers. Characters outside the
/// BMP are stood in for by one BMP character of the same Unicode category while matching, and the
/// matches are mapped back to the original text. Immutable; safe to share.
/// </summary>
internal sealed class CodePointRegex
{
    private readonly Regex _regex;

    public CodePointRegex(string pattern)
    {
        Pattern = pattern;
        try
        {
            _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(10));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Pre-tokenizer regex '{pattern}' is not one .NET can run: {e.Message}", e);
        }
    }

    public string Pattern { get; }

    /// <summary>The matches in <paramref name="text"/> as (start, length) in UTF-16 units of the original text.</summary>
    public List<(int Start, int Length)> Matches(string text)
    {
        var matches = new List<(int, int)>();
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            foreach (var m in _regex.EnumerateMatches(text))
            {
                if (m.Length > 0)
                {
                    matches.Add((m.Index, m.Length));
                }
            }

            return matches;
        }

        // One char per code point; originalIndex[i] is where stand-in char i starts in the text.
        var standIns = new StringBuilder(text.Length);
        var originalIndex = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length;)
        {
            originalIndex.Add(i);
            if (Rune.TryGetRuneAt(text, i, out var rune) && rune.Utf16SequenceLength == 2)
            {
                standIns.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(rune.Value)));
                i += 2;
            }
            else
            {
                standIns.Append(text[i]);
                i++;
            }
        }

        originalIndex.Add(text.Length);
        foreach (var m in _regex.EnumerateMatches(standIns.ToString()))
        {
            if (m.Length > 0)
            {
                int start = originalIndex[m.Index];
                matches.Add((start, originalIndex[m.Index + m.Length] - start));
            }
        }

        return matches;
    }

    /// <summary>A BMP character of <paramref name="category"/>, none of them ASCII (literals in patterns are).</summary>
    private static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => '\u00C0',
        UnicodeCategory.LowercaseLetter => '\u00E0',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u4E00',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.MathSymbol => '\u00AC',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u00B4',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00A1',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        UnicodeCategory.OtherNotAssigned => '\u0378',
        _ => '\u00A9', // OtherSymbol (emoji) and anything else
    };
}
