using System.Globalization;
using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>Python's two string-formatting mini-languages: <c>"%s" % args</c> and <c>"{}".format(args)</c> (common specifiers only).</summary>
internal static class PyFormat
{
    public static string Percent(string format, object? args)
    {
        var positional = args is ListValue { IsTuple: true } tuple ? tuple.Items : [args];
        var mapping = args as DictValue;
        var builder = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%')
            {
                builder.Append(c);
                continue;
            }

            if (++i >= format.Length) throw new ChatTemplateException("incomplete format");
            object? value;
            if (format[i] == '%')
            {
                builder.Append('%');
                continue;
            }

            string? key = null;
            if (format[i] == '(')
            {
                int close = format.IndexOf(')', i);
                if (close < 0) throw new ChatTemplateException("incomplete format key");
                key = format[(i + 1)..close];
                i = close + 1;
            }

            int specStart = i;
            while (i < format.Length && "-+ #0123456789.".Contains(format[i], StringComparison.Ordinal)) i++;
            if (i >= format.Length) throw new ChatTemplateException("incomplete format");
            string spec = format[specStart..i];
            if (key is not null)
            {
                if (mapping is null || !mapping.TryGet(key, out value)) throw new ChatTemplateException($"format requires a mapping with key '{key}'");
            }
            else
            {
                if (next >= positional.Count) throw new ChatTemplateException("not enough arguments for format string");
                value = positional[next++];
            }

            builder.Append(FormatOne(value, spec, format[i]));
        }

        if (mapping is null && next < positional.Count) throw new ChatTemplateException("not all arguments converted during string formatting");
        return builder.ToString();
    }

    private static string FormatOne(object? value, string spec, char conversion)
    {
        bool leftAlign = spec.Contains('-', StringComparison.Ordinal);
        bool zeroPad = spec.StartsWith('0') || spec.Contains("-0", StringComparison.Ordinal);
        string numbers = spec.TrimStart('-', '+', ' ', '#', '0');
        int dot = numbers.IndexOf('.', StringComparison.Ordinal);
        int width = ParseOrDefault(dot < 0 ? numbers : numbers[..dot], 0);
        int? precision = dot < 0 ? null : ParseOrDefault(numbers[(dot + 1)..], 0);
        string text = conversion switch
        {
            's' => PyOps.Str(value),
            'r' or 'a' => PyOps.Repr(value),
            'd' or 'i' or 'u' => ((long)Math.Truncate(PyOps.ToDouble(value))).ToString(CultureInfo.InvariantCulture),
            'f' or 'F' => PyOps.ToDouble(value).ToString("F" + (precision ?? 6).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture),
            'x' => PyOps.ToLong(value).ToString("x", CultureInfo.InvariantCulture),
            'X' => PyOps.ToLong(value).ToString("X", CultureInfo.InvariantCulture),
            _ => throw new ChatTemplateException($"unsupported format character '{conversion}'"),
        };
        if (conversion is 's' or 'r' && precision is int p && p < text.Length) text = text[..p];
        if (text.Length >= width) return text;
        if (leftAlign) return text.PadRight(width);
        return zeroPad && conversion is not ('s' or 'r') ? text.PadLeft(width, '0') : text.PadLeft(width);
    }

    private static int ParseOrDefault(string text, int fallback) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) ? value : fallback;

    /// <summary><c>str.format</c>: <c>{}</c>, <c>{0}</c>, <c>{name}</c>, <c>{{</c>/<c>}}</c>, with fill, alignment, width and precision.</summary>
    public static string Format(string format, CallArguments args)
    {
        var builder = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c == '}')
            {
                if (i + 1 < format.Length && format[i + 1] == '}') i++;
                else throw new ChatTemplateException("Single '}' encountered in format string");
                builder.Append('}');
                continue;
            }

            if (c != '{')
            {
                builder.Append(c);
                continue;
            }

            if (i + 1 < format.Length && format[i + 1] == '{')
            {
                builder.Append('{');
                i++;
                continue;
            }

            int close = format.IndexOf('}', i);
            if (close < 0) throw new ChatTemplateException("Single '{' encountered in format string");
            string field = format[(i + 1)..close];
            i = close;
            int colon = field.IndexOf(':', StringComparison.Ordinal);
            string name = colon < 0 ? field : field[..colon];
            string spec = colon < 0 ? string.Empty : field[(colon + 1)..];
            int bang = name.IndexOf('!', StringComparison.Ordinal);
            char conversion = bang < 0 ? 's' : name[bang + 1];
            if (bang >= 0) name = name[..bang];
            object? value;
            if (name.Length == 0) value = Positional(args, auto++);
            else if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int index)) value = Positional(args, index);
            else if (args.Has(-1, name)) value = args.Get(-1, name, null);
            else throw new ChatTemplateException($"KeyError: '{name}'");
            builder.Append(ApplySpec(value, spec, conversion));
        }

        return builder.ToString();
    }

    private static object? Positional(CallArguments args, int index) =>
        index < args.Positional.Count ? args.Positional[index] : throw new ChatTemplateException($"Replacement index {index} out of range for positional args tuple");

    private static string ApplySpec(object? value, string spec, char conversion)
    {
        if (spec.Length == 0) return conversion == 'r' ? PyOps.Repr(value) : PyOps.Str(value);
        int i = 0;
        char fill = ' ';
        char align = '\0';
        if (spec.Length >= 2 && spec[1] is '<' or '>' or '^' or '=')
        {
            fill = spec[0];
            align = spec[1];
            i = 2;
        }
        else if (spec[0] is '<' or '>' or '^' or '=')
        {
            align = spec[0];
            i = 1;
        }

        if (i < spec.Length && spec[i] == '0' && align == '\0')
        {
            fill = '0';
            align = '=';
        }

        int start = i;
        while (i < spec.Length && char.IsAsciiDigit(spec[i])) i++;
        int width = ParseOrDefault(spec[start..i], 0);
        int? precision = null;
        if (i < spec.Length && spec[i] == '.')
        {
            start = ++i;
            while (i < spec.Length && char.IsAsciiDigit(spec[i])) i++;
            precision = ParseOrDefault(spec[start..i], 0);
        }

        char type = i < spec.Length ? spec[i] : '\0';
        string text = type switch
        {
            'f' or 'F' => PyOps.ToDouble(value).ToString("F" + (precision ?? 6).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture),
            'd' => PyOps.ToLong(value).ToString(CultureInfo.InvariantCulture),
            _ => precision is int p && PyOps.IsString(value) && p < PyOps.AsString(value)!.Length ? PyOps.AsString(value)![..p] : PyOps.Str(value),
        };
        if (text.Length >= width) return text;
        if (align == '\0') align = PyOps.IsNumber(value) ? '>' : '<';
        int pad = width - text.Length;
        return align switch
        {
            '<' => text + new string(fill, pad),
            '^' => new string(fill, pad / 2) + text + new string(fill, pad - (pad / 2)),
            _ => new string(fill, pad) + text,
        };
    }
}
