using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace Pipeline.Properties;

/// <summary>Valid Unicode text: no lone surrogates, no control characters except '\n'.</summary>
public sealed record PrintableText(string Value)
{
    // Escaped so that a failing case prints every character unambiguously.
    public override string ToString() =>
        string.Concat(Value.EnumerateRunes().Select(r => r.Value is >= 0x20 and < 0x7F ? r.ToString() : $"\\u{{{r.Value:X}}}"));
}

/// <summary>Generators for the tokenizer properties, as named members of one class.</summary>
public static class TextGenerators
{
    // Characters of tok512.bin outside ASCII, so that merges of multi-byte pieces happen too.
    private static readonly int[] VocabularyNonAscii = [0xE9, 0xF1, 0xE2, 0xA0, 0x201C, 0x201D, 0x2019, 0x2018, 0x2013, 0x2014, 0x2026, 0x20AC, 0x2122, 0x200A];

    public static Gen<Rune> PrintableRune =>
        Gen.Frequency(
            (10, Gen.Choose(0x20, 0x7E)),                 // ASCII: most merges live here
            (1, Gen.Constant((int)'\n')),                 // generated stories are full of newlines
            (2, Gen.Elements(VocabularyNonAscii)),
            (2, Gen.Choose(0xA1, 0x17F)),                 // Latin-1 and Latin Extended-A: 2 UTF-8 bytes
            (2, Gen.Choose(0x370, 0x4FF)),                // Greek and Cyrillic
            (2, Gen.Choose(0x2000, 0x2BFF)),              // punctuation, symbols, box drawing (▁ is U+2581)
            (2, Gen.Choose(0x4E00, 0x9FFF)),              // CJK: 3 UTF-8 bytes
            (2, Gen.Choose(0x1F300, 0x1FAFF)),            // emoji: non-BMP, 4 UTF-8 bytes, a surrogate pair
            (1, Gen.Choose(0x20000, 0x2A6DF)))            // CJK Extension B
        .Where(IsPrintable)
        .Select(cp => new Rune(cp));

    public static Arbitrary<PrintableText> PrintableTextArbitrary() =>
        Arb.From(
            PrintableRune.ArrayOf().Select(FromRunes),
            text => ShrinkByRune(text.Value).Select(r => FromRunes([.. r])));

    private static bool IsPrintable(int codePoint) =>
        codePoint == '\n' || (Rune.IsValid(codePoint) && Rune.GetUnicodeCategory(new Rune(codePoint)) is not
            (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
             or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned));

    private static PrintableText FromRunes(Rune[] runes) => new(string.Concat(runes.Select(r => r.ToString())));

    // Shrinks whole characters only, so that a shrunk case is still valid text.
    private static IEnumerable<Rune[]> ShrinkByRune(string text)
    {
        Rune[] runes = [.. text.EnumerateRunes()];
        if (runes.Length > 1)
        {
            yield return runes[..(runes.Length / 2)];
            yield return runes[(runes.Length / 2)..];
        }

        for (int i = 0; i < runes.Length; i++)
        {
            yield return [.. runes[..i], .. runes[(i + 1)..]];
        }

        for (int i = 0; i < runes.Length; i++)
        {
            if (runes[i].Value > 0x7E)
            {
                yield return [.. runes[..i], new Rune('a'), .. runes[(i + 1)..]];
            }
        }
    }
}
