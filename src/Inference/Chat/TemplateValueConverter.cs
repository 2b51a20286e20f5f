using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Inference.Chat;

/// <summary>
/// Turns caller data (System.Text.Json nodes or elements, CLR scalars, dictionaries, lists) into template
/// values the way Python's <c>json.loads</c> would: a JSON number with a fraction or exponent is a float,
/// any other an int; objects keep their key order.
/// </summary>
internal static class TemplateValueConverter
{
    public static object? FromClr(object? value) => value switch
    {
        null => null,
        string or bool or long or double or System.Numerics.BigInteger or DictValue or ListValue or SafeString or Undefined => value,
        int i => (long)i,
        short s => (long)s,
        uint u => (long)u,
        float f => (double)f,
        decimal m => (double)m,
        JsonElement element => FromElement(element),
        JsonNode node => FromNode(node),
        IDictionary<string, object?> dict => ToDict(dict),
        IReadOnlyDictionary<string, object?> dict => ToDict(dict),
        IEnumerable sequence => new ListValue(sequence.Cast<object?>().Select(FromClr).ToList()),
        _ => throw new ChatTemplateException($"a chat template variable cannot hold a {value.GetType().Name}"),
    };

    private static DictValue ToDict(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var dict = new DictValue();
        foreach (var (key, item) in pairs) dict.Set(key, FromClr(item));
        return dict;
    }

    public static object? FromNode(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj:
            {
                var dict = new DictValue();
                foreach (var (key, item) in obj) dict.Set(key, FromNode(item));
                return dict;
            }

            case JsonArray array:
                return new ListValue(array.Select(FromNode).ToList());
            case JsonValue scalar:
                if (scalar.TryGetValue<JsonElement>(out var element)) return FromElement(element);
                if (scalar.TryGetValue<string>(out var text)) return text;
                if (scalar.TryGetValue<bool>(out var flag)) return flag;
                if (scalar.TryGetValue<long>(out var whole)) return whole;
                if (scalar.TryGetValue<double>(out var real)) return real;
                return FromElement(JsonSerializer.SerializeToElement(scalar));
            default:
                throw new ChatTemplateException($"unsupported JSON node {node.GetType().Name}");
        }
    }

    public static object? FromElement(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
            {
                var dict = new DictValue();
                foreach (var property in element.EnumerateObject()) dict.Set(property.Name, FromElement(property.Value));
                return dict;
            }

            case JsonValueKind.Array:
                return new ListValue(element.EnumerateArray().Select(FromElement).ToList());
            case JsonValueKind.String:
                return element.GetString();
            case JsonValueKind.Number:
            {
                string raw = element.GetRawText();
                bool isFloat = raw.AsSpan().IndexOfAny(".eE") >= 0;
                if (!isFloat) return PyOps.Normalize(System.Numerics.BigInteger.Parse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));
                return double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
            }

            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            case JsonValueKind.Null:
                return null;
            default:
                return Undefined.Named("value");
        }
    }
}
