using System.Globalization;
using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>
/// Python's <c>json.dumps</c>, which transformers' <c>tojson</c> filter calls with
/// <c>ensure_ascii=False</c>: <c>", "</c> and <c>": "</c> separators (<c>","</c> once indenting), keys in
/// insertion order unless <c>sort_keys</c>, floats as Python's repr, no HTML escaping.
/// </summary>
internal static class PyJson
{
    public static string Dumps(object? value, string? indent, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii)
    {
        var builder = new StringBuilder();
        Write(builder, value, indent, itemSeparator, keySeparator, sortKeys, ensureAscii, 0);
        return builder.ToString();
    }

    private static void Write(StringBuilder b, object? value, string? indent, string itemSep, string keySep, bool sortKeys, bool ascii, int level)
    {
        switch (value)
        {
            case null:
                b.Append("null");
                break;
            case bool flag:
                b.Append(flag ? "true" : "false");
                break;
            case long l:
                b.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case System.Numerics.BigInteger i:
                b.Append(i.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                b.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyOps.FloatRepr(d));
                break;
            case string or SafeString:
                WriteString(b, PyOps.AsString(value)!, ascii);
                break;
            case ListValue list:
                if (list.Count == 0)
                {
                    b.Append("[]");
                    break;
                }

                b.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) b.Append(itemSep);
                    NewLine(b, indent, level + 1);
                    Write(b, list.Items[i], indent, itemSep, keySep, sortKeys, ascii, level + 1);
                }

                NewLine(b, indent, level);
                b.Append(']');
                break;
            case DictValue dict:
            {
                if (dict.Count == 0)
                {
                    b.Append("{}");
                    break;
                }

                var entries = dict.Entries.Select(e => new KeyValuePair<string, object?>(KeyText(e.Key), e.Value)).ToList();
                if (sortKeys) entries.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
                b.Append('{');
                for (int i = 0; i < entries.Count; i++)
                {
                    if (i > 0) b.Append(itemSep);
                    NewLine(b, indent, level + 1);
                    WriteString(b, entries[i].Key, ascii);
                    b.Append(keySep);
                    Write(b, entries[i].Value, indent, itemSep, keySep, sortKeys, ascii, level + 1);
                }

                NewLine(b, indent, level);
                b.Append('}');
                break;
            }

            default:
                throw new ChatTemplateException($"Object of type {PyOps.TypeName(value)} is not JSON serializable");
        }
    }

    private static string KeyText(object? key) => key switch
    {
        string or SafeString => PyOps.AsString(key)!,
        null => "null",
        bool flag => flag ? "true" : "false",
        long or double or System.Numerics.BigInteger => PyOps.Str(key),
        _ => throw new ChatTemplateException($"keys must be str, int, float, bool or None, not {PyOps.TypeName(key)}"),
    };

    private static void NewLine(StringBuilder b, string? indent, int level)
    {
        if (indent is null) return;
        b.Append('\n');
        for (int i = 0; i < level; i++) b.Append(indent);
    }

    private static void WriteString(StringBuilder b, string text, bool ascii)
    {
        b.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                case '\b': b.Append("\\b"); break;
                case '\f': b.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e)) b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else b.Append(c);
                    break;
            }
        }

        b.Append('"');
    }
}
