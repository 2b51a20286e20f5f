using System.Globalization;
using System.Numerics;
using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>
/// Python's meaning of the operations a template performs on values: truthiness, <c>str()</c>,
/// <c>repr()</c>, <c>==</c>, ordering, arithmetic, iteration, <c>len()</c> and <c>in</c>. Jinja2 hands
/// every one of these to Python, so a template renders the same here only if these agree with CPython.
/// </summary>
internal static partial class PyOps
{
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        SafeString => "Markup",
        ListValue { IsTuple: true } => "tuple",
        ListValue => "list",
        DictValue => "dict",
        NamespaceValue => "Namespace",
        Undefined => "Undefined",
        GeneratorValue => "generator",
        MacroValue => "Macro",
        LoopValue => "LoopContext",
        FunctionValue or BoundMethod => "builtin_function_or_method",
        _ => value.GetType().Name,
    };

    public static bool IsTruthy(object? value) => value switch
    {
        null => false,
        Undefined => false,
        bool b => b,
        long l => l != 0,
        BigInteger i => !i.IsZero,
        double d => d != 0,
        string s => s.Length != 0,
        SafeString s => s.Value.Length != 0,
        ListValue l => l.Count != 0,
        DictValue d => d.Count != 0,
        _ => true,
    };

    public static bool IsString(object? value) => value is string or SafeString;

    public static bool IsNumber(object? value) => value is bool or long or double or BigInteger;

    /// <summary>A Python int: bool, long, or a BigInteger for values past long's range (Python ints never overflow).</summary>
    public static bool IsInt(object? value) => value is bool or long or BigInteger;

    private static BigInteger ToBig(object? value) => value switch
    {
        bool b => b ? BigInteger.One : BigInteger.Zero,
        long l => l,
        BigInteger i => i,
        _ => throw new ChatTemplateException($"'{TypeName(value)}' object cannot be interpreted as an integer"),
    };

    /// <summary>Gives a long when the value fits, so only out-of-range ints are BigIntegers.</summary>
    public static object Normalize(BigInteger value) => value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;

    public static string? AsString(object? value) => value switch
    {
        string s => s,
        SafeString s => s.Value,
        _ => null,
    };

    /// <summary>Python's <c>str(value)</c>, with jinja2's Undefined printing as the empty string.</summary>
    public static string Str(object? value) => value switch
    {
        string s => s,
        SafeString s => s.Value,
        null => "None",
        Undefined => string.Empty,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger i => i.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        NamespaceValue ns => "<Namespace " + ReprNamespace(ns) + ">",
        GeneratorValue => "<generator object>",
        MacroValue m => $"<Macro '{m.Name}'>",
        LoopValue l => $"<LoopContext {l.Index}/{l.Length}>",
        FunctionValue f => $"<function {f.Name}>",
        BoundMethod m => $"<built-in method {m.Name} of {TypeName(m.Receiver)} object>",
        ListValue or DictValue => Repr(value),
        _ => $"<{TypeName(value)} object>",
    };

    /// <summary>Python's <c>repr(value)</c>: strings quoted, containers spelled as Python literals.</summary>
    public static string Repr(object? value)
    {
        var builder = new StringBuilder();
        AppendRepr(builder, value);
        return builder.ToString();
    }

    private static string ReprNamespace(NamespaceValue ns)
    {
        var dict = new DictValue();
        foreach (var pair in ns.Attributes) dict.Set(pair.Key, pair.Value);
        return Repr(dict);
    }

    private static void AppendRepr(StringBuilder builder, object? value)
    {
        switch (value)
        {
            case string s:
                AppendStringRepr(builder, s);
                break;
            case SafeString s:
                builder.Append("Markup(");
                AppendStringRepr(builder, s.Value);
                builder.Append(')');
                break;
            case Undefined:
                builder.Append("Undefined");
                break;
            case ListValue list:
                builder.Append(list.IsTuple ? '(' : '[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) builder.Append(", ");
                    AppendRepr(builder, list.Items[i]);
                }

                if (list.IsTuple && list.Count == 1) builder.Append(',');
                builder.Append(list.IsTuple ? ')' : ']');
                break;
            case DictValue dict:
                builder.Append('{');
                for (int i = 0; i < dict.Count; i++)
                {
                    if (i > 0) builder.Append(", ");
                    AppendRepr(builder, dict.Entries[i].Key);
                    builder.Append(": ");
                    AppendRepr(builder, dict.Entries[i].Value);
                }

                builder.Append('}');
                break;
            default:
                builder.Append(Str(value));
                break;
        }
    }

    private static void AppendStringRepr(StringBuilder builder, string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        builder.Append(quote);
        foreach (var rune in s.EnumerateRunes())
        {
            int c = rune.Value;
            if (c == quote || c == '\\') builder.Append('\\').Append((char)c);
            else if (c == '\n') builder.Append("\\n");
            else if (c == '\r') builder.Append("\\r");
            else if (c == '\t') builder.Append("\\t");
            else if (IsPrintable(rune)) builder.Append(rune.ToString());
            else if (c < 0x100) builder.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            else if (c < 0x10000) builder.Append("\\u").Append(c.ToString("x4", CultureInfo.InvariantCulture));
            else builder.Append("\\U").Append(c.ToString("x8", CultureInfo.InvariantCulture));
        }

        builder.Append(quote);
    }

    // Python's str.isprintable: everything except the Other and Separator categories, space excepted.
    private static bool IsPrintable(Rune rune)
    {
        if (rune.Value == ' ') return true;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator => false,
            _ => true,
        };
    }

    /// <summary>Python's <c>repr(float)</c>: the shortest round-tripping digits, exponent form outside 1e-4 .. 1e16.</summary>
    public static string FloatRepr(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsPositiveInfinity(value)) return "inf";
        if (double.IsNegativeInfinity(value)) return "-inf";
        if (value == 0) return double.IsNegative(value) ? "-0.0" : "0.0";

        // "R" gives the shortest round-trip digits, e.g. "1.5E-05" or "123.25"; split them into
        // digits and the position of the decimal point, then lay them out as CPython does.
        string shortest = value.ToString("R", CultureInfo.InvariantCulture);
        bool negative = shortest.StartsWith('-');
        if (negative) shortest = shortest[1..];
        int exponentAt = shortest.IndexOfAny(['E', 'e']);
        string mantissa = exponentAt < 0 ? shortest : shortest[..exponentAt];
        int exponent = exponentAt < 0 ? 0 : int.Parse(shortest[(exponentAt + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        int dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        string digits = dot < 0 ? mantissa : mantissa.Remove(dot, 1);
        int pointAt = (dot < 0 ? mantissa.Length : dot) + exponent;
        int leadingZeros = 0;
        while (leadingZeros < digits.Length - 1 && digits[leadingZeros] == '0') leadingZeros++;
        digits = digits[leadingZeros..];
        pointAt -= leadingZeros;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";

        var builder = new StringBuilder();
        if (negative) builder.Append('-');
        if (pointAt <= -4 || pointAt > 16)
        {
            builder.Append(digits[0]);
            if (digits.Length > 1) builder.Append('.').Append(digits, 1, digits.Length - 1);
            int e = pointAt - 1;
            builder.Append('e').Append(e < 0 ? '-' : '+').Append(Math.Abs(e).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (pointAt <= 0)
        {
            builder.Append("0.").Append('0', -pointAt).Append(digits);
        }
        else if (pointAt >= digits.Length)
        {
            builder.Append(digits).Append('0', pointAt - digits.Length).Append(".0");
        }
        else
        {
            builder.Append(digits, 0, pointAt).Append('.').Append(digits, pointAt, digits.Length - pointAt);
        }

        return builder.ToString();
    }

    /// <summary>Python's <c>==</c>.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) == ToDouble(b);
            return ToBig(a) == ToBig(b);
        }

        if (IsString(a) && IsString(b)) return string.Equals(AsString(a), AsString(b), StringComparison.Ordinal);
        switch (a)
        {
            case null: return b is null;
            case Undefined: return b is Undefined;
            case ListValue la when b is ListValue lb:
                if (la.IsTuple != lb.IsTuple || la.Count != lb.Count) return false;
                for (int i = 0; i < la.Count; i++)
                {
                    if (!Equal(la.Items[i], lb.Items[i])) return false;
                }

                return true;
            case DictValue da when b is DictValue db:
                if (da.Count != db.Count) return false;
                foreach (var pair in da.Entries)
                {
                    if (!db.TryGet(pair.Key, out var other) || !Equal(pair.Value, other)) return false;
                }

                return true;
            default:
                return ReferenceEquals(a, b);
        }
    }

    /// <summary>Python's ordering (<c>&lt;</c> etc.) as a sign; refuses mixed types as Python does.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a).CompareTo(ToDouble(b));
            return ToBig(a).CompareTo(ToBig(b));
        }

        if (IsString(a) && IsString(b)) return Math.Sign(string.CompareOrdinal(AsString(a), AsString(b)));
        if (a is ListValue la && b is ListValue lb && la.IsTuple == lb.IsTuple)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (!Equal(la.Items[i], lb.Items[i])) return Compare(la.Items[i], lb.Items[i], op);
            }

            return la.Count.CompareTo(lb.Count);
        }

        throw new ChatTemplateException($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    public static void ThrowIfUndefined(object? value)
    {
        if (value is Undefined u) throw u.Error();
    }

    public static double ToDouble(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        BigInteger i => (double)i,
        _ => throw new ChatTemplateException($"expected a number, got '{TypeName(value)}'"),
    };

    public static long ToLong(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        BigInteger i when i >= long.MinValue && i <= long.MaxValue => (long)i,
        BigInteger => throw new ChatTemplateException("Python int too large to convert to C long"),
        _ => throw new ChatTemplateException($"'{TypeName(value)}' object cannot be interpreted as an integer"),
    };

    /// <summary>Python's <c>iter(value)</c>, with Undefined iterating as empty (jinja2's default Undefined).</summary>
    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        Undefined => [],
        ListValue list => list.Items,
        DictValue dict => dict.Entries.Select(e => e.Key),
        string s => CodePoints(s),
        SafeString s => CodePoints(s.Value),
        GeneratorValue g => g.Drain(),
        _ => throw new ChatTemplateException($"'{TypeName(value)}' object is not iterable"),
    };

    public static List<object?> ToList(object? value) => [.. Iterate(value)];

    public static IEnumerable<object?> CodePoints(string s)
    {
        foreach (var rune in s.EnumerateRunes()) yield return rune.ToString();
    }

    /// <summary>Python's <c>len(value)</c>; Undefined has length 0.</summary>
    public static long Length(object? value) => value switch
    {
        Undefined => 0,
        string s => CodePointCount(s),
        SafeString s => CodePointCount(s.Value),
        ListValue list => list.Count,
        DictValue dict => dict.Count,
        NamespaceValue ns => ns.Attributes.Count,
        _ => throw new ChatTemplateException($"object of type '{TypeName(value)}' has no len()"),
    };

    public static int CodePointCount(string s)
    {
        int count = s.Length;
        foreach (char c in s)
        {
            if (char.IsLowSurrogate(c)) count--;
        }

        return count;
    }

    /// <summary>Python's <c>item in container</c>.</summary>
    public static bool Contains(object? container, object? item)
    {
        switch (container)
        {
            case string or SafeString:
                if (!IsString(item)) throw new ChatTemplateException($"'in <string>' requires string as left operand, not {TypeName(item)}");
                return AsString(container)!.Contains(AsString(item)!, StringComparison.Ordinal);
            case DictValue dict:
                return PyKeyComparer.IsHashable(item) ? dict.ContainsKey(item) : throw new ChatTemplateException($"unhashable type: '{TypeName(item)}'");
            case NamespaceValue:
                throw new ChatTemplateException("argument of type 'Namespace' is not iterable");
            case Undefined or ListValue or GeneratorValue:
                foreach (var element in Iterate(container))
                {
                    if (Equal(element, item)) return true;
                }

                return false;
            default:
                throw new ChatTemplateException($"argument of type '{TypeName(container)}' is not iterable");
        }
    }

    /// <summary>Python's <c>str.isspace</c> for one character (what <c>strip()</c> and <c>split()</c> remove).</summary>
    public static bool IsSpace(char c) => c switch
    {
        ' ' or '\t' or '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x1f' or '\x85' or '\xa0' => true,
        _ => c > 0xff && (c == '\u1680' || (c >= '\u2000' && c <= '\u200a') || c == '\u2028' || c == '\u2029' || c == '\u202f' || c == '\u205f' || c == '\u3000'),
    };
}
