using System.Collections.Frozen;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Pipeline.Inference.Chat;

/// <summary>
/// jinja2's built-in filters as the Python implementation behaves (argument names, defaults, the values
/// they return: <c>select</c>/<c>map</c>/<c>items</c> give one-shot generators), plus transformers'
/// <c>tojson</c>.
/// </summary>
internal static partial class TemplateFilters
{
    public static readonly FrozenSet<string> Names = new HashSet<string>(StringComparer.Ordinal)
    {
        "abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
        "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
        "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum",
        "title", "tojson", "trim", "unique", "upper", "wordcount", "batch",
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Every filter jinja2 3.1 defines: a name outside this set fails at parse time, as jinja2 fails at compile time.</summary>
    public static readonly FrozenSet<string> JinjaNames = new HashSet<string>(StringComparer.Ordinal)
    {
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat",
        "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list",
        "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace", "reverse", "round", "safe",
        "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate",
        "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    }.ToFrozenSet(StringComparer.Ordinal);

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginningSplit();

    [GeneratedRegex(@"\w+")]
    private static partial Regex Word();

    public static object? Apply(TemplateRenderer renderer, string name, object? value, CallArguments args)
    {
        switch (name)
        {
            case "abs":
                PyOps.ThrowIfUndefined(value);
                return value switch
                {
                    bool b => (object)(b ? 1L : 0L),
                    long or System.Numerics.BigInteger => PyOps.Normalize(System.Numerics.BigInteger.Abs(value is long l ? l : (System.Numerics.BigInteger)value)),
                    double d => (object)Math.Abs(d),
                    _ => throw new ChatTemplateException($"bad operand type for abs(): '{PyOps.TypeName(value)}'"),
                };
            case "attr":
                return ValueAccess.GetAttribute(value, PyOps.Str(args.Get(0, "name", null)));
            case "capitalize":
                return PyStrings.Capitalize(PyOps.Str(value));
            case "center":
                return ValueMethods.Call(PyOps.Str(value), "center", new CallArguments([args.Get(0, "width", 80L)], []));
            case "count" or "length":
                return PyOps.Length(value);
            case "d" or "default":
            {
                var fallback = args.Get(0, "default_value", string.Empty);
                bool boolean = PyOps.IsTruthy(args.Get(1, "boolean", false));
                return value is Undefined || (boolean && !PyOps.IsTruthy(value)) ? fallback : value;
            }

            case "dictsort":
                return DictSort(value, args);
            case "e" or "escape" or "forceescape":
                return value is SafeString && name != "forceescape" ? value : new SafeString(PyOps.HtmlEscape(PyOps.Str(value)));
            case "first":
                foreach (var item in PyOps.Iterate(value)) return item;
                return Undefined.WithMessage("No first item, sequence was empty.");
            case "last":
            {
                var items = PyOps.ToList(value);
                return items.Count > 0 ? items[^1] : Undefined.WithMessage("No last item, sequence was empty.");
            }

            case "float":
                return ToFloat(value, args.Get(0, "default", 0.0));
            case "format":
                return PyFormat.Percent(PyOps.Str(value), args.Keywords.Count > 0 ? KeywordDict(args) : new ListValue([.. args.Positional], true));
            case "indent":
                return Indent(value, args);
            case "int":
                return ToInt(value, args.Get(0, "default", 0L), (int)PyOps.ToLong(args.Get(1, "base", 10L)));
            case "items":
                if (value is Undefined) return new GeneratorValue([]);
                if (value is not DictValue dict) return new GeneratorValue(FailWhenIterated("Can only get item pairs from a mapping."));
                return new GeneratorValue(dict.Entries.Select(e => (object?)new ListValue([e.Key, e.Value], true)).ToList());
            case "join":
                return Join(value, args);
            case "list":
                return new ListValue(PyOps.ToList(value));
            case "lower":
                return PyStrings.Lower(PyOps.Str(value));
            case "upper":
                return PyStrings.Upper(PyOps.Str(value));
            case "map":
                return Map(renderer, value, args);
            case "max" or "min":
                return MinMax(value, args, name == "max");
            case "select" or "reject" or "selectattr" or "rejectattr":
                return Select(renderer, value, args, name.StartsWith('s'), name.EndsWith("attr", StringComparison.Ordinal));
            case "replace":
            {
                string result = PyStrings.Replace(PyOps.Str(value), PyOps.Str(args.Get(0, "old", null)), PyOps.Str(args.Get(1, "new", null)), (int)PyOps.ToLong(args.Get(2, "count", -1L) ?? -1L));
                return value is SafeString ? new SafeString(result) : result;
            }

            case "reverse":
                if (PyOps.IsString(value)) return ValueAccess.Slice(value, null, null, -1L);
                {
                    var items = PyOps.ToList(value);
                    items.Reverse();
                    return new GeneratorValue(items);
                }

            case "round":
                return Round(value, args);
            case "safe":
                return value is SafeString ? value : new SafeString(PyOps.Str(value));
            case "sort":
                return Sort(value, args);
            case "string":
                return value is SafeString ? value : PyOps.Str(value);
            case "sum":
            {
                object? total = args.Get(1, "start", 0L);
                var attribute = args.Get(0, "attribute", null);
                foreach (var item in PyOps.Iterate(value)) total = PyOps.Add(total, attribute is null ? item : GetPath(item, attribute, null));
                return total;
            }

            case "title":
                return string.Concat(WordBeginningSplit().Split(PyOps.Str(value)).Where(p => p.Length > 0).Select(p => char.ToUpperInvariant(p[0]) + p[1..].ToLowerInvariant()));
            case "tojson":
                return ToJson(value, args);
            case "trim":
            {
                string result = PyStrings.Strip(PyOps.Str(value), PyOps.AsString(args.Get(0, "chars", null)), true, true);
                return value is SafeString ? new SafeString(result) : result;
            }

            case "unique":
                return Unique(value, args);
            case "wordcount":
                return (long)Word().Count(PyOps.Str(value));
            case "batch":
                return Batch(value, args);
            default:
                throw new ChatTemplateException(JinjaNames.Contains(name)
                    ? $"the jinja2 filter '{name}' is not supported by this chat-template engine"
                    : $"No filter named '{name}'.");
        }
    }

    // jinja2's generator filters check their input only when first iterated.
    private static IEnumerable<object?> FailWhenIterated(string message)
    {
        if (message.Length >= 0) throw new ChatTemplateException(message);
        yield break;
    }

    private static DictValue KeywordDict(CallArguments args)
    {
        var dict = new DictValue();
        foreach (var (key, value) in args.Keywords) dict.Set(key, value);
        return dict;
    }

    private static string ToJson(object? value, CallArguments args)
    {
        bool ensureAscii = PyOps.IsTruthy(args.Get(0, "ensure_ascii", false));
        var indentArg = args.Get(1, "indent", null);
        string? indent = indentArg switch
        {
            null => null,
            long or bool => new string(' ', (int)Math.Max(0, PyOps.ToLong(indentArg))),
            string s => s,
            _ => throw new ChatTemplateException($"tojson indent must be an int or a string, not {PyOps.TypeName(indentArg)}"),
        };
        string itemSeparator = indent is null ? ", " : ",";
        string keySeparator = ": ";
        if (args.Get(2, "separators", null) is ListValue { Count: 2 } separators)
        {
            itemSeparator = PyOps.Str(separators.Items[0]);
            keySeparator = PyOps.Str(separators.Items[1]);
        }

        bool sortKeys = PyOps.IsTruthy(args.Get(3, "sort_keys", false));
        return PyJson.Dumps(value, indent, itemSeparator, keySeparator, sortKeys, ensureAscii);
    }

    // jinja2's indent: the first line stays unless first=True; blank lines stay blank unless blank=True.
    private static object? Indent(object? value, CallArguments args)
    {
        var width = args.Get(0, "width", 4L);
        string indention = width is string s ? s : new string(' ', (int)PyOps.ToLong(width));
        bool first = PyOps.IsTruthy(args.Get(1, "first", false));
        bool blank = PyOps.IsTruthy(args.Get(2, "blank", false));
        string text = PyOps.Str(value) + "\n";
        var lines = PyStrings.SplitLines(text, false);
        var builder = new StringBuilder();
        if (blank)
        {
            builder.AppendJoin("\n" + indention, lines);
        }
        else if (lines.Count > 0)
        {
            builder.Append(lines[0]);
            for (int i = 1; i < lines.Count; i++)
            {
                builder.Append('\n');
                if (lines[i].Length > 0) builder.Append(indention);
                builder.Append(lines[i]);
            }
        }

        string result = first ? indention + builder : builder.ToString();
        return value is SafeString ? new SafeString(result) : result;
    }

    private static object? Round(object? value, CallArguments args)
    {
        int precision = (int)PyOps.ToLong(args.Get(0, "precision", 0L));
        string method = PyOps.Str(args.Get(1, "method", "common"));
        double x = PyOps.ToDouble(value);
        double scale = Math.Pow(10, precision);
        return method switch
        {
            "common" when value is long or bool && precision >= 0 => value is bool b ? (b ? 1L : 0L) : value,
            "common" => Math.Round(x, Math.Clamp(precision, 0, 15), MidpointRounding.ToEven),
            "ceil" => Math.Ceiling(x * scale) / scale,
            "floor" => Math.Floor(x * scale) / scale,
            _ => throw new ChatTemplateException("method must be common, ceil or floor"),
        };
    }

    private static object? ToInt(object? value, object? fallback, int numberBase)
    {
        switch (value)
        {
            case bool b: return b ? 1L : 0L;
            case long or System.Numerics.BigInteger: return value;
            case double d when !double.IsNaN(d) && !double.IsInfinity(d): return (long)Math.Truncate(d);
            case string or SafeString:
            {
                string text = PyOps.AsString(value)!.Trim().Replace("_", string.Empty, StringComparison.Ordinal);
                try
                {
                    if (numberBase == 10 && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long parsed)) return parsed;
                    if (numberBase != 10 && text.Length > 0) return Convert.ToInt64(text, numberBase);
                }
                catch (FormatException)
                {
                    return fallback;
                }
                catch (ArgumentException)
                {
                    return fallback;
                }

                return ToFloat(value, null) is double d && !double.IsNaN(d) && !double.IsInfinity(d) ? (long)Math.Truncate(d) : fallback;
            }

            default: return fallback;
        }
    }

    private static object? ToFloat(object? value, object? fallback)
    {
        switch (value)
        {
            case bool or long or double or System.Numerics.BigInteger: return PyOps.ToDouble(value);
            case string or SafeString:
            {
                string text = PyOps.AsString(value)!.Trim().Replace("_", string.Empty, StringComparison.Ordinal).ToLowerInvariant();
                if (text is "nan" or "+nan" or "-nan") return double.NaN;
                if (text is "inf" or "+inf" or "infinity" or "+infinity") return double.PositiveInfinity;
                if (text is "-inf" or "-infinity") return double.NegativeInfinity;
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : fallback;
            }

            default: return fallback;
        }
    }
}
