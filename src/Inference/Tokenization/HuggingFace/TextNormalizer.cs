using System.Text.RegularExpressions;
using Pipeline.Inference.Tokenization.Unicode;

namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>
/// A <c>tokenizer.json</c> normalizer: Unicode forms NFC and NFD (not the compatibility forms NFKC and NFKD), <c>Lowercase</c>,
/// <c>Prepend</c>, <c>Replace</c>, <c>Strip</c> and <c>Sequence</c> of them. Immutable.
/// </summary>
internal sealed class TextNormalizer
{
    private readonly Func<string, string>[] _steps;

    private TextNormalizer(Func<string, string>[] steps) => _steps = steps;

    /// <summary>Reads the <c>normalizer</c> component (null gives the identity).</summary>
    public static TextNormalizer Read(JsonComponent component)
    {
        var steps = new List<Func<string, string>>();
        if (!component.IsNull)
        {
            Add(component, steps);
        }

        return new TextNormalizer([.. steps]);
    }

    public string Normalize(string text)
    {
        foreach (var step in _steps)
        {
            text = step(text);
        }

        return text;
    }

    private static void Add(JsonComponent c, List<Func<string, string>> steps)
    {
        switch (c.Type)
        {
            case "Sequence":
                foreach (var inner in c.Items("normalizers"))
                {
                    Add(inner, steps);
                }

                break;
            // Our own tables: under InvariantGlobalization string.Normalize returns its input unchanged.
            case "NFC":
                steps.Add(CanonicalNormalization.ToNfc);
                break;
            case "NFD":
                steps.Add(CanonicalNormalization.ToNfd);
                break;
            case "Lowercase":
                steps.Add(static t => t.ToLowerInvariant());
                break;
            case "Prepend":
                string prefix = c.RequiredString("prepend");
                steps.Add(t => t.Length == 0 ? t : prefix + t);
                break;
            case "Replace":
                steps.Add(ReadReplace(c));
                break;
            case "Strip":
                bool left = c.Bool("strip_left", absent: true);
                bool right = c.Bool("strip_right", absent: true);
                steps.Add(t => left && right ? t.Trim() : left ? t.TrimStart() : right ? t.TrimEnd() : t);
                break;
            default:
                throw c.Unsupported();
        }
    }

    /// <summary>A <c>Replace</c> normalizer or decoder: a literal or regex pattern and its replacement.</summary>
    public static Func<string, string> ReadReplace(JsonComponent c)
    {
        string content = c.RequiredString("content");
        var pattern = c.Child("pattern");
        string? literal = pattern.OptionalString("String");
        if (literal is not null)
        {
            return t => t.Replace(literal, content, StringComparison.Ordinal);
        }

        string regex = pattern.OptionalString("Regex") ?? throw pattern.Malformed("has neither \"String\" nor \"Regex\"");
        var compiled = new Regex(regex, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(10));
        return t => compiled.Replace(t, _ => content); // content is literal, not a .NET substitution pattern
    }
}
