using System.Collections.Frozen;
using System.Globalization;
using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>
/// The Python methods templates call on values: <c>str</c> (strip, split, startswith, format, ...),
/// <c>dict</c> (items, keys, values, get) and <c>list</c> (count, index). Mutating methods are found (so
/// <c>x.append</c> is not Undefined) but refuse to run, as in transformers' immutable sandbox.
/// </summary>
internal static class ValueMethods
{
    private static readonly FrozenSet<string> StringMethods = new HashSet<string>(StringComparer.Ordinal)
    {
        "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
        "title", "capitalize", "swapcase", "casefold", "replace", "find", "rfind", "index", "rindex", "count", "join",
        "format", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "isnumeric", "isdecimal",
        "center", "ljust", "rjust", "zfill", "removeprefix", "removesuffix", "partition", "rpartition",
    }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> DictMethods = new HashSet<string>(StringComparer.Ordinal) { "items", "keys", "values", "get", "copy" }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> DictMutators = new HashSet<string>(StringComparer.Ordinal) { "pop", "popitem", "setdefault", "update", "clear" }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> ListMethods = new HashSet<string>(StringComparer.Ordinal) { "count", "index", "copy" }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> ListMutators = new HashSet<string>(StringComparer.Ordinal) { "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear" }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The method <paramref name="name"/> of <paramref name="target"/>, or null when it has none.</summary>
    public static BoundMethod? Lookup(object target, string name) => target switch
    {
        string or SafeString when StringMethods.Contains(name) => new BoundMethod(target, name, false),
        DictValue when DictMethods.Contains(name) => new BoundMethod(target, name, false),
        DictValue when DictMutators.Contains(name) => new BoundMethod(target, name, true),
        ListValue { IsTuple: false } when ListMutators.Contains(name) => new BoundMethod(target, name, true),
        ListValue when ListMethods.Contains(name) && !(name == "copy" && ((ListValue)target).IsTuple) => new BoundMethod(target, name, false),
        _ => null,
    };

    public static object? Call(object receiver, string name, CallArguments args) => receiver switch
    {
        string s => CallString(s, name, args),
        SafeString s => CallSafeString(s, name, args),
        DictValue d => CallDict(d, name, args),
        ListValue l => CallList(l, name, args),
        _ => throw new ChatTemplateException($"'{PyOps.TypeName(receiver)}' object has no attribute '{name}'"),
    };

    // markupsafe's Markup keeps these results Markup (escaping their string arguments).
    private static object? CallSafeString(SafeString s, string name, CallArguments args)
    {
        var result = CallString(s.Value, name, args);
        return name is "strip" or "lstrip" or "rstrip" or "upper" or "lower" or "title" or "capitalize" or "replace" or "center" or "ljust" or "rjust" or "zfill"
            && result is string text ? new SafeString(text) : result;
    }

    private static object? CallDict(DictValue dict, string name, CallArguments args)
    {
        switch (name)
        {
            case "items":
                return new ListValue(dict.Entries.Select(e => (object?)new ListValue([e.Key, e.Value], true)).ToList());
            case "keys":
                return new ListValue(dict.Entries.Select(e => e.Key).ToList());
            case "values":
                return new ListValue(dict.Entries.Select(e => e.Value).ToList());
            case "get":
            {
                var key = args.Get(0, "key", null);
                return dict.TryGet(key, out var value) ? value : args.Get(1, "default", null);
            }

            case "copy":
            {
                var copy = new DictValue();
                foreach (var (key, value) in dict.Entries) copy.Set(key, value);
                return copy;
            }

            default:
                throw new ChatTemplateException($"'dict' object has no attribute '{name}'");
        }
    }

    private static object? CallList(ListValue list, string name, CallArguments args)
    {
        var item = args.Get(0, "value", null);
        switch (name)
        {
            case "count":
                return (long)list.Items.Count(x => PyOps.Equal(x, item));
            case "index":
                int at = list.Items.FindIndex(x => PyOps.Equal(x, item));
                return at >= 0 ? (long)at : throw new ChatTemplateException($"{PyOps.Repr(item)} is not in list");
            case "copy":
                return new ListValue([.. list.Items]);
            default:
                throw new ChatTemplateException($"'{PyOps.TypeName(list)}' object has no attribute '{name}'");
        }
    }

    private static string Arg(CallArguments args, int index, string name)
    {
        var value = args.Get(index, name, null);
        return PyOps.AsString(value) ?? throw new ChatTemplateException($"{name} must be str, not {PyOps.TypeName(value)}");
    }

    private static string? OptionalArg(CallArguments args, int index, string name)
    {
        var value = args.Get(index, name, null);
        if (value is null) return null;
        return PyOps.AsString(value) ?? throw new ChatTemplateException($"{name} arg must be None or str");
    }

    private static object? CallString(string s, string name, CallArguments args)
    {
        switch (name)
        {
            case "strip": return PyStrings.Strip(s, OptionalArg(args, 0, "chars"), true, true);
            case "lstrip": return PyStrings.Strip(s, OptionalArg(args, 0, "chars"), true, false);
            case "rstrip": return PyStrings.Strip(s, OptionalArg(args, 0, "chars"), false, true);
            case "split":
            case "rsplit":
            {
                var parts = PyStrings.Split(s, OptionalArg(args, 0, "sep"), (int)PyOps.ToLong(args.Get(1, "maxsplit", -1L)), name == "rsplit");
                return new ListValue(parts.ConvertAll(p => (object?)p));
            }

            case "splitlines":
                return new ListValue(PyStrings.SplitLines(s, PyOps.IsTruthy(args.Get(0, "keepends", false))).ConvertAll(p => (object?)p));
            case "startswith":
            case "endswith":
                return StartsOrEndsWith(s, args, name == "startswith");
            case "upper": return PyStrings.Upper(s);
            case "lower": return PyStrings.Lower(s);
            case "casefold": return s.ToLowerInvariant();
            case "swapcase": return string.Concat(s.Select(c => char.IsUpper(c) ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)));
            case "title": return PyStrings.Title(s);
            case "capitalize": return PyStrings.Capitalize(s);
            case "replace":
                return PyStrings.Replace(s, Arg(args, 0, "old"), Arg(args, 1, "new"), (int)PyOps.ToLong(args.Get(2, "count", -1L)));
            case "find": return (long)s.IndexOf(Arg(args, 0, "sub"), StringComparison.Ordinal);
            case "rfind": return (long)s.LastIndexOf(Arg(args, 0, "sub"), StringComparison.Ordinal);
            case "index":
            case "rindex":
            {
                string sub = Arg(args, 0, "sub");
                int at = name == "index" ? s.IndexOf(sub, StringComparison.Ordinal) : s.LastIndexOf(sub, StringComparison.Ordinal);
                return at >= 0 ? (long)at : throw new ChatTemplateException("substring not found");
            }

            case "count": return (long)PyStrings.Count(s, Arg(args, 0, "sub"));
            case "join":
                return string.Join(s, PyOps.Iterate(args.Get(0, "iterable", null)).Select(x =>
                    PyOps.AsString(x) ?? throw new ChatTemplateException($"sequence item: expected str instance, {PyOps.TypeName(x)} found")));
            case "format": return PyFormat.Format(s, args);
            case "isdigit" or "isnumeric" or "isdecimal": return s.Length > 0 && s.All(char.IsDigit);
            case "isalpha": return s.Length > 0 && s.All(char.IsLetter);
            case "isalnum": return s.Length > 0 && s.All(char.IsLetterOrDigit);
            case "isspace": return s.Length > 0 && s.All(PyOps.IsSpace);
            case "isupper": return s.Any(char.IsLetter) && !s.Any(char.IsLower);
            case "islower": return s.Any(char.IsLetter) && !s.Any(char.IsUpper);
            case "center" or "ljust" or "rjust":
            {
                int width = (int)PyOps.ToLong(args.Get(0, "width", 0L));
                string fill = OptionalArg(args, 1, "fillchar") ?? " ";
                int pad = width - PyOps.CodePointCount(s);
                if (pad <= 0) return s;
                if (name == "ljust") return s + Repeat(fill, pad);
                if (name == "rjust") return Repeat(fill, pad) + s;
                int left = (pad / 2) + (pad & width & 1);
                return Repeat(fill, left) + s + Repeat(fill, pad - left);
            }

            case "zfill":
            {
                int width = (int)PyOps.ToLong(args.Get(0, "width", 0L));
                if (s.Length >= width) return s;
                bool signed = s.Length > 0 && s[0] is '+' or '-';
                return signed ? s[0] + new string('0', width - s.Length) + s[1..] : new string('0', width - s.Length) + s;
            }

            case "removeprefix":
            {
                string prefix = Arg(args, 0, "prefix");
                return s.StartsWith(prefix, StringComparison.Ordinal) ? s[prefix.Length..] : s;
            }

            case "removesuffix":
            {
                string suffix = Arg(args, 0, "suffix");
                return suffix.Length > 0 && s.EndsWith(suffix, StringComparison.Ordinal) ? s[..^suffix.Length] : s;
            }

            case "partition":
            case "rpartition":
            {
                string sep = Arg(args, 0, "sep");
                int at = name == "partition" ? s.IndexOf(sep, StringComparison.Ordinal) : s.LastIndexOf(sep, StringComparison.Ordinal);
                if (at < 0) return name == "partition" ? new ListValue([s, string.Empty, string.Empty], true) : new ListValue([string.Empty, string.Empty, s], true);
                return new ListValue([s[..at], sep, s[(at + sep.Length)..]], true);
            }

            default:
                throw new ChatTemplateException($"'str' object has no attribute '{name}'");
        }
    }

    private static string Repeat(string fill, int count)
    {
        var builder = new StringBuilder();
        for (int i = 0; i < count; i++) builder.Append(fill);
        return builder.ToString();
    }

    private static bool StartsOrEndsWith(string s, CallArguments args, bool starts)
    {
        var affix = args.Get(0, starts ? "prefix" : "suffix", null);
        int length = s.Length;
        if (args.Positional.Count > 1)
        {
            long from = PyOps.ToLong(args.Positional[1]);
            long to = args.Positional.Count > 2 && args.Positional[2] is not null ? PyOps.ToLong(args.Positional[2]) : length;
            if (from < 0) from = Math.Max(0, from + length);
            if (to < 0) to = Math.Max(0, to + length);
            from = Math.Min(from, length);
            to = Math.Min(to, length);
            s = to > from ? s[(int)from..(int)to] : string.Empty;
        }

        var candidates = affix is ListValue { IsTuple: true } tuple ? tuple.Items : [affix];
        foreach (var candidate in candidates)
        {
            string text = PyOps.AsString(candidate)
                ?? throw new ChatTemplateException($"{(starts ? "startswith" : "endswith")} first arg must be str or a tuple of str, not {PyOps.TypeName(candidate)}");
            if (starts ? s.StartsWith(text, StringComparison.Ordinal) : s.EndsWith(text, StringComparison.Ordinal)) return true;
        }

        return false;
    }
}
