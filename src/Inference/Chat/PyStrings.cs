using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>Python <c>str</c> algorithms whose .NET look-alikes differ (whitespace set, split rules, title case, replace with "").</summary>
internal static class PyStrings
{
    // Characters whose Python upper case is more than one character (Unicode SpecialCasing).
    private static readonly System.Buffers.SearchValues<char> UpperSpecialCases =
        System.Buffers.SearchValues.Create("\u00df\u0149\u01f0\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06");

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        int start = 0, end = s.Length;
        Func<char, bool> strips = chars is null ? PyOps.IsSpace : c => chars.Contains(c, StringComparison.Ordinal);
        if (left)
        {
            while (start < end && strips(s[start])) start++;
        }

        if (right)
        {
            while (end > start && strips(s[end - 1])) end--;
        }

        return s[start..end];
    }

    public static List<string> Split(string s, string? sep, int maxSplit, bool fromRight)
    {
        if (sep is not null && sep.Length == 0) throw new ChatTemplateException("empty separator");
        var parts = new List<string>();
        if (maxSplit < 0) maxSplit = int.MaxValue;
        if (sep is null)
        {
            // Runs of whitespace separate; leading and trailing whitespace yield no empty parts.
            var words = new List<(int Start, int End)>();
            int i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && PyOps.IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                int start = i;
                while (i < s.Length && !PyOps.IsSpace(s[i])) i++;
                words.Add((start, i));
            }

            if (words.Count == 0) return parts;
            if (words.Count - 1 <= maxSplit)
            {
                parts.AddRange(words.Select(w => s[w.Start..w.End]));
                return parts;
            }

            if (!fromRight)
            {
                for (int k = 0; k < maxSplit; k++) parts.Add(s[words[k].Start..words[k].End]);
                parts.Add(Strip(s[words[maxSplit].Start..], null, false, true));
            }
            else
            {
                int first = words.Count - maxSplit;
                parts.Add(Strip(s[..words[first - 1].End], null, true, false));
                for (int k = first; k < words.Count; k++) parts.Add(s[words[k].Start..words[k].End]);
            }

            return parts;
        }

        var cuts = new List<int>();
        for (int at = s.IndexOf(sep, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sep, at + sep.Length, StringComparison.Ordinal)) cuts.Add(at);
        if (cuts.Count > maxSplit) cuts = fromRight ? cuts.GetRange(cuts.Count - maxSplit, maxSplit) : cuts.GetRange(0, maxSplit);
        int from = 0;
        foreach (int cut in cuts)
        {
            parts.Add(s[from..cut]);
            from = cut + sep.Length;
        }

        parts.Add(s[from..]);
        return parts;
    }

    private static bool IsLineBreak(char c) => c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029';

    public static List<string> SplitLines(string s, bool keepEnds)
    {
        var lines = new List<string>();
        int start = 0, i = 0;
        while (i < s.Length)
        {
            if (!IsLineBreak(s[i]))
            {
                i++;
                continue;
            }

            int end = i;
            i += s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? 2 : 1;
            lines.Add(keepEnds ? s[start..i] : s[start..end]);
            start = i;
        }

        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>Python's <c>str.title</c>: a letter after a non-letter is upper-cased, other letters lower-cased.</summary>
    public static string Title(string s)
    {
        var builder = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            builder.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }

        return builder.ToString();
    }

    /// <summary>Python's <c>str.upper</c>: the invariant mapping plus the one-to-many special cases (ß → SS, ligatures).</summary>
    public static string Upper(string s)
    {
        string upper = s.ToUpperInvariant();
        if (upper.AsSpan().IndexOfAny(UpperSpecialCases) < 0) return upper;
        var builder = new StringBuilder(upper.Length + 4);
        foreach (char c in upper)
        {
            builder.Append(c switch
            {
                '\u00df' => "SS",
                '\u0149' => "\u02bcN",
                '\u01f0' => "J\u030c",
                '\ufb00' => "FF",
                '\ufb01' => "FI",
                '\ufb02' => "FL",
                '\ufb03' => "FFI",
                '\ufb04' => "FFL",
                '\ufb05' or '\ufb06' => "ST",
                _ => c.ToString(),
            });
        }

        return builder.ToString();
    }

    /// <summary>Python's <c>str.lower</c>: the invariant mapping plus İ → i̇.</summary>
    public static string Lower(string s)
    {
        string lower = s.ToLowerInvariant();
        return s.Contains('\u0130', StringComparison.Ordinal) ? lower.Replace("\u0130", "i\u0307", StringComparison.Ordinal) : lower;
    }

    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    public static string Replace(string s, string old, string replacement, int count)
    {
        if (count < 0) count = int.MaxValue;
        var builder = new StringBuilder();
        if (old.Length == 0)
        {
            // Python inserts the replacement before every character and at the end.
            int done = 0;
            foreach (char c in s)
            {
                if (done++ < count) builder.Append(replacement);
                builder.Append(c);
            }

            if (done < count) builder.Append(replacement);
            return builder.ToString();
        }

        int from = 0, replaced = 0;
        for (int at = s.IndexOf(old, StringComparison.Ordinal); at >= 0 && replaced < count; at = s.IndexOf(old, from, StringComparison.Ordinal))
        {
            builder.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
            replaced++;
        }

        return builder.Append(s, from, s.Length - from).ToString();
    }

    public static int Count(string s, string sub)
    {
        if (sub.Length == 0) return PyOps.CodePointCount(s) + 1;
        int count = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
