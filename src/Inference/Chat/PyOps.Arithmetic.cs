using System.Numerics;
using System.Text;

namespace Pipeline.Inference.Chat;

// Python's arithmetic: ints that never overflow, true and floor division, modulo with the divisor's
// sign, str and list concatenation and repetition, and markupsafe's escaping when Markup meets str.
internal static partial class PyOps
{
    public static object? Add(object? a, object? b)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) + ToDouble(b);
            return Normalize(ToBig(a) + ToBig(b));
        }

        if (a is SafeString || b is SafeString)
        {
            if (IsString(a) && IsString(b)) return new SafeString(EscapeUnlessSafe(a) + EscapeUnlessSafe(b));
        }
        else if (a is string sa && b is string sb)
        {
            return string.Concat(sa, sb);
        }

        if (a is ListValue la && b is ListValue lb && la.IsTuple == lb.IsTuple)
        {
            var items = new List<object?>(la.Count + lb.Count);
            items.AddRange(la.Items);
            items.AddRange(lb.Items);
            return new ListValue(items, la.IsTuple);
        }

        if (IsString(a) || a is ListValue)
        {
            throw new ChatTemplateException($"can only concatenate {TypeName(a)} (not \"{TypeName(b)}\") to {TypeName(a)}");
        }

        throw Unsupported("+", a, b);
    }

    private static string EscapeUnlessSafe(object? value) => value is SafeString s ? s.Value : HtmlEscape(Str(value));

    /// <summary>markupsafe's <c>escape</c>.</summary>
    public static string HtmlEscape(string text)
    {
        if (text.AsSpan().IndexOfAny("&<>'\"") < 0) return text;
        return text.Replace("&", "&amp;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal)
            .Replace("<", "&lt;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal)
            .Replace("\"", "&#34;", StringComparison.Ordinal);
    }

    public static object? Subtract(object? a, object? b)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("-", a, b);
        if (a is double || b is double) return ToDouble(a) - ToDouble(b);
        return Normalize(ToBig(a) - ToBig(b));
    }

    public static object? Multiply(object? a, object? b)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) * ToDouble(b);
            return Normalize(ToBig(a) * ToBig(b));
        }

        if ((IsString(a) || a is ListValue) && b is long or bool) return Repeat(a, ToLong(b));
        if ((IsString(b) || b is ListValue) && a is long or bool) return Repeat(b, ToLong(a));
        throw Unsupported("*", a, b);
    }

    private static object Repeat(object? sequence, long times)
    {
        if (sequence is ListValue list)
        {
            var items = new List<object?>();
            for (long i = 0; i < times; i++) items.AddRange(list.Items);
            return new ListValue(items, list.IsTuple);
        }

        var builder = new StringBuilder();
        string text = AsString(sequence)!;
        for (long i = 0; i < times; i++) builder.Append(text);
        return sequence is SafeString ? new SafeString(builder.ToString()) : builder.ToString();
    }

    public static object? Divide(object? a, object? b)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("/", a, b);
        double divisor = ToDouble(b);
        if (divisor == 0) throw new ChatTemplateException("division by zero");
        return ToDouble(a) / divisor;
    }

    public static object? FloorDivide(object? a, object? b)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("//", a, b);
        if (a is double || b is double)
        {
            double divisor = ToDouble(b);
            if (divisor == 0) throw new ChatTemplateException("float floor division by zero");
            return Math.Floor(ToDouble(a) / divisor);
        }

        BigInteger x = ToBig(a), y = ToBig(b);
        if (y.IsZero) throw new ChatTemplateException("integer division or modulo by zero");
        var q = BigInteger.DivRem(x, y, out var r);
        if (!r.IsZero && (x.Sign < 0) != (y.Sign < 0)) q -= 1;
        return Normalize(q);
    }

    public static object? Modulo(object? a, object? b)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (IsString(a)) return PyFormat.Percent(AsString(a)!, b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("%", a, b);
        if (a is double || b is double)
        {
            double x = ToDouble(a), y = ToDouble(b);
            if (y == 0) throw new ChatTemplateException("float modulo");
            double m = x % y;
            if (m != 0 && (m < 0) != (y < 0)) m += y;
            return m;
        }

        BigInteger p = ToBig(a), q = ToBig(b);
        if (q.IsZero) throw new ChatTemplateException("integer division or modulo by zero");
        var r = BigInteger.Remainder(p, q);
        if (!r.IsZero && (r.Sign < 0) != (q.Sign < 0)) r += q;
        return Normalize(r);
    }

    public static object? Power(object? a, object? b)
    {
        ThrowIfUndefined(a);
        ThrowIfUndefined(b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("**", a, b);
        if (a is double || b is double || ToBig(b).Sign < 0) return Math.Pow(ToDouble(a), ToDouble(b));
        long exponent = ToLong(b);
        if (exponent > 100_000) throw new ChatTemplateException("exponent too large for a chat template");
        return Normalize(BigInteger.Pow(ToBig(a), (int)exponent));
    }

    public static object? Negate(object? value)
    {
        ThrowIfUndefined(value);
        return value switch
        {
            bool b => (object)(b ? -1L : 0L),
            long or BigInteger => Normalize(-ToBig(value)),
            double d => (object)(-d),
            _ => throw new ChatTemplateException($"bad operand type for unary -: '{TypeName(value)}'"),
        };
    }

    private static ChatTemplateException Unsupported(string op, object? a, object? b) =>
        new($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");
}
