using System.Collections.Frozen;
using System.Text;

namespace Pipeline.Inference.Tokenization.Unicode;

/// <summary>
/// Unicode NFC and NFD (canonical decomposition, canonical ordering, canonical composition), done
/// here because the project runs with InvariantGlobalization, where <see cref="string.Normalize()"/>
/// silently returns its input. Tables are generated (CanonicalTables.g.cs); Hangul is algorithmic.
/// </summary>
internal static partial class CanonicalNormalization
{
    private const int HangulSBase = 0xAC00, HangulLBase = 0x1100, HangulVBase = 0x1161, HangulTBase = 0x11A7;
    private const int HangulLCount = 19, HangulVCount = 21, HangulTCount = 28, HangulNCount = HangulVCount * HangulTCount, HangulSCount = HangulLCount * HangulNCount;

    private static readonly FrozenDictionary<int, (int First, int Second)> Decompositions = BuildDecompositions();
    private static readonly FrozenDictionary<int, byte> CombiningClasses = BuildCombiningClasses();
    private static readonly FrozenDictionary<long, int> Composites = BuildComposites();

    /// <summary>Text in Normalization Form C.</summary>
    public static string ToNfc(string text) => Normalize(text, compose: true);

    /// <summary>Text in Normalization Form D.</summary>
    public static string ToNfd(string text) => Normalize(text, compose: false);

    private static string Normalize(string text, bool compose)
    {
        // Below U+0300 there are no combining marks, and NFC leaves everything as it is.
        if (compose && !text.AsSpan().ContainsAnyExceptInRange('\0', '\u02FF'))
        {
            return text;
        }

        var codePoints = new List<int>(text.Length + 8);
        foreach (var rune in text.EnumerateRunes())
        {
            Decompose(rune.Value, codePoints);
        }

        SortCombiningMarks(codePoints);
        if (compose)
        {
            Compose(codePoints);
        }

        var result = new StringBuilder(codePoints.Count + 8);
        foreach (int cp in codePoints)
        {
            result.Append(new Rune(cp).ToString());
        }

        return result.ToString();
    }

    private static void Decompose(int cp, List<int> output)
    {
        int s = cp - HangulSBase;
        if (s is >= 0 and < HangulSCount)
        {
            output.Add(HangulLBase + s / HangulNCount);
            output.Add(HangulVBase + s % HangulNCount / HangulTCount);
            if (s % HangulTCount != 0)
            {
                output.Add(HangulTBase + s % HangulTCount);
            }

            return;
        }

        if (Decompositions.TryGetValue(cp, out var parts))
        {
            Decompose(parts.First, output);
            if (parts.Second != 0)
            {
                Decompose(parts.Second, output);
            }

            return;
        }

        output.Add(cp);
    }

    private static int ClassOf(int cp) => CombiningClasses.TryGetValue(cp, out byte c) ? c : 0;

    /// <summary>Canonical ordering: each run of non-starters stably sorted by combining class.</summary>
    private static void SortCombiningMarks(List<int> cps)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int c = ClassOf(cps[i]);
            if (c == 0)
            {
                continue;
            }

            for (int j = i; j > 0 && ClassOf(cps[j - 1]) > c; j--)
            {
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
            }
        }
    }

    /// <summary>Canonical composition (the Unicode reference algorithm, UAX #15).</summary>
    private static void Compose(List<int> cps)
    {
        if (cps.Count == 0)
        {
            return;
        }

        int starterPos = 0;
        int starter = cps[0];
        int lastClass = ClassOf(starter) == 0 ? 0 : 256; // a leading non-starter blocks composition
        int kept = 1;
        for (int i = 1; i < cps.Count; i++)
        {
            int cp = cps[i];
            int cls = ClassOf(cp);
            int composite = ComposePair(starter, cp);
            if (composite >= 0 && (lastClass < cls || lastClass == 0))
            {
                cps[starterPos] = composite;
                starter = composite;
                continue;
            }

            if (cls == 0)
            {
                starterPos = kept;
                starter = cp;
            }

            lastClass = cls;
            cps[kept++] = cp;
        }

        cps.RemoveRange(kept, cps.Count - kept);
    }

    private static int ComposePair(int first, int second)
    {
        int l = first - HangulLBase, v = second - HangulVBase;
        if (l is >= 0 and < HangulLCount && v is >= 0 and < HangulVCount)
        {
            return HangulSBase + (l * HangulVCount + v) * HangulTCount;
        }

        int s = first - HangulSBase, t = second - HangulTBase;
        if (s is >= 0 and < HangulSCount && s % HangulTCount == 0 && t is > 0 and < HangulTCount)
        {
            return first + t;
        }

        return Composites.TryGetValue(((long)first << 21) | (uint)second, out int composite) ? composite : -1;
    }

    private static FrozenDictionary<int, (int, int)> BuildDecompositions()
    {
        var data = DecompositionData;
        var map = new Dictionary<int, (int, int)>(data.Length / 3);
        for (int i = 0; i < data.Length; i += 3)
        {
            map[data[i]] = (data[i + 1], data[i + 2]);
        }

        return map.ToFrozenDictionary();
    }

    private static FrozenDictionary<int, byte> BuildCombiningClasses()
    {
        var data = CombiningClassData;
        var map = new Dictionary<int, byte>(data.Length / 2);
        for (int i = 0; i < data.Length; i += 2)
        {
            map[data[i]] = (byte)data[i + 1];
        }

        return map.ToFrozenDictionary();
    }

    private static FrozenDictionary<long, int> BuildComposites()
    {
        var data = CompositionData;
        var map = new Dictionary<long, int>(data.Length / 3);
        for (int i = 0; i < data.Length; i += 3)
        {
            map[((long)data[i] << 21) | (uint)data[i + 1]] = data[i + 2];
        }

        return map.ToFrozenDictionary();
    }
}
