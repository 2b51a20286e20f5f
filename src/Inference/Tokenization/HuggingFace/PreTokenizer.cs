using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Inference.Tokenization.Bpe;

namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>
/// A <c>tokenizer.json</c> pre-tokenizer: cuts normalized text into the words BPE runs on.
/// Supported: <c>Split</c> (string or regex, every delimiter behaviour, invert), <c>ByteLevel</c>
/// (GPT-2 regex, prefix space, byte alphabet), <c>Metaspace</c>, <c>Digits</c>,
/// <c>WhitespaceSplit</c>, <c>Whitespace</c> and <c>Sequence</c>. Immutable.
/// </summary>
internal sealed class PreTokenizer
{
    /// <summary>GPT-2's pattern, which ByteLevel uses when <c>use_regex</c> is on.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    // Each step maps one word (and whether it starts the whole text) to the words it becomes.
    private readonly Step[] _steps;

    private PreTokenizer(Step[] steps) => _steps = steps;

    private delegate void Step(Word word, List<Word> output);

    /// <summary>A piece of text; <c>AtTextStart</c> when it begins the text being encoded.</summary>
    internal readonly record struct Word(string Text, bool AtTextStart);

    /// <summary>Whether words come out spelled in GPT-2's byte alphabet (a ByteLevel step ran).</summary>
    public bool SpellsBytes { get; private init; }

    public static PreTokenizer Read(JsonComponent component)
    {
        var steps = new List<Step>();
        bool spellsBytes = false;
        if (!component.IsNull)
        {
            Add(component, steps, ref spellsBytes);
        }

        return new PreTokenizer([.. steps]) { SpellsBytes = spellsBytes };
    }

    /// <summary>The words of one plain-text segment (between added tokens).</summary>
    public List<Word> Split(string text, bool atTextStart)
    {
        var words = new List<Word> { new(text, atTextStart) };
        foreach (var step in _steps)
        {
            var next = new List<Word>(words.Count * 2);
            foreach (var word in words)
            {
                step(word, next);
            }

            words = next;
        }

        return words;
    }

    private static void Add(JsonComponent c, List<Step> steps, ref bool spellsBytes)
    {
        switch (c.Type)
        {
            case "Sequence":
                foreach (var inner in c.Items("pretokenizers"))
                {
                    Add(inner, steps, ref spellsBytes);
                }

                break;
            case "Split":
                steps.Add(ReadSplit(c));
                break;
            case "ByteLevel":
                steps.Add(ReadByteLevel(c));
                spellsBytes = true;
                break;
            case "Metaspace":
                steps.Add(ReadMetaspace(c));
                break;
            case "Digits":
                var digits = new CodePointRegex(c.Bool("individual_digits", absent: false) ? @"\p{Nd}" : @"\p{Nd}+");
                steps.Add(RegexStep(digits, SplitBehavior.Isolated, invert: false));
                break;
            case "WhitespaceSplit":
                steps.Add(RegexStep(new CodePointRegex(@"\s+"), SplitBehavior.Removed, invert: false));
                break;
            case "Whitespace":
                steps.Add(RegexStep(new CodePointRegex(@"\w+|[^\w\s]+"), SplitBehavior.Removed, invert: true));
                break;
            default:
                throw c.Unsupported();
        }
    }

    private static Step ReadSplit(JsonComponent c)
    {
        var pattern = c.Child("pattern");
        string? literal = pattern.OptionalString("String");
        string regex = literal is not null
            ? Regex.Escape(literal)
            : pattern.OptionalString("Regex") ?? throw pattern.Malformed("has neither \"String\" nor \"Regex\"");
        var behavior = c.RequiredString("behavior") switch
        {
            "Removed" => SplitBehavior.Removed,
            "Isolated" => SplitBehavior.Isolated,
            "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
            "MergedWithNext" => SplitBehavior.MergedWithNext,
            "Contiguous" => SplitBehavior.Contiguous,
            var other => throw c.Child("behavior").Malformed($"is \"{other}\", not a known split behaviour"),
        };
        return RegexStep(new CodePointRegex(regex), behavior, c.Bool("invert", absent: false));
    }

    private static Step RegexStep(CodePointRegex regex, SplitBehavior behavior, bool invert) => (word, output) =>
    {
        bool first = true;
        foreach (var (start, length) in Splitting.Split(word.Text.Length, regex.Matches(word.Text), behavior, invert))
        {
            output.Add(new Word(word.Text.Substring(start, length), word.AtTextStart && first && start == 0));
            first = false;
        }
    };

    private static Step ReadByteLevel(JsonComponent c)
    {
        bool addPrefixSpace = c.Bool("add_prefix_space", absent: true);
        var regex = c.Bool("use_regex", absent: true) ? new CodePointRegex(Gpt2Pattern) : null;
        return (word, output) =>
        {
            // As Hugging Face does, every word reaching this step gets the prefix space, not only the first.
            string text = addPrefixSpace && !word.Text.StartsWith(' ') ? " " + word.Text : word.Text;
            if (regex is null)
            {
                output.Add(word with { Text = ByteLevelAlphabet.Spell(Encoding.UTF8.GetBytes(text)) });
                return;
            }

            foreach (var (start, length) in Splitting.Split(text.Length, regex.Matches(text), SplitBehavior.Isolated, invert: false))
            {
                output.Add(new Word(ByteLevelAlphabet.Spell(Encoding.UTF8.GetBytes(text.Substring(start, length))), word.AtTextStart && start == 0));
            }
        };
    }

    private static Step ReadMetaspace(JsonComponent c)
    {
        string replacement = c.OptionalString("replacement") ?? "\u2581";
        // Newer files name a prepend_scheme; older ones a bool add_prefix_space.
        string scheme = c.OptionalString("prepend_scheme") ?? (c.Bool("add_prefix_space", absent: true) ? "always" : "never");
        if (scheme is not ("always" or "first" or "never"))
        {
            throw c.Child("prepend_scheme").Malformed($"is \"{scheme}\", not always, first or never");
        }

        bool split = c.Bool("split", absent: true);
        var splitter = new CodePointRegex(Regex.Escape(replacement));
        return (word, output) =>
        {
            string text = word.Text.Replace(" ", replacement, StringComparison.Ordinal);
            bool prepend = scheme == "always" || (scheme == "first" && word.AtTextStart);
            if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal))
            {
                text = replacement + text;
            }

            if (!split)
            {
                output.Add(word with { Text = text });
                return;
            }

            foreach (var (start, length) in Splitting.Split(text.Length, splitter.Matches(text), SplitBehavior.MergedWithNext, invert: false))
            {
                output.Add(new Word(text.Substring(start, length), word.AtTextStart && start == 0));
            }
        };
    }
}
