using System.Text.Json;

namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>Reading helpers for the parts of a <c>tokenizer.json</c>, with errors naming the file and part.</summary>
internal readonly record struct JsonComponent(JsonElement Element, string File, string Part)
{
    /// <summary>The component's <c>type</c>, or an error when it has none.</summary>
    public string Type => Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
        ? t.GetString()!
        : throw Malformed("has no \"type\"");

    public bool IsNull => Element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    public JsonComponent Child(string name) =>
        Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty(name, out var child)
            ? new JsonComponent(child, File, $"{Part}.{name}")
            : new JsonComponent(default, File, $"{Part}.{name}");

    public IEnumerable<JsonComponent> Items(string name)
    {
        var list = Child(name);
        if (list.Element.ValueKind != JsonValueKind.Array)
        {
            throw list.Malformed("is not a list");
        }

        int i = 0;
        foreach (var item in list.Element.EnumerateArray())
        {
            yield return new JsonComponent(item, File, $"{list.Part}[{i++}]");
        }
    }

    public string? OptionalString(string name)
    {
        var child = Child(name);
        return child.Element.ValueKind switch
        {
            JsonValueKind.String => child.Element.GetString(),
            JsonValueKind.Null or JsonValueKind.Undefined => null,
            _ => throw child.Malformed("is not a string"),
        };
    }

    public string RequiredString(string name) => OptionalString(name) ?? throw Child(name).Malformed("is missing");

    public bool Bool(string name, bool absent)
    {
        var child = Child(name);
        return child.Element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null or JsonValueKind.Undefined => absent,
            _ => throw child.Malformed("is not a bool"),
        };
    }

    public int Int(string name, int absent)
    {
        var child = Child(name);
        return child.Element.ValueKind switch
        {
            JsonValueKind.Number when child.Element.TryGetInt32(out int v) => v,
            JsonValueKind.Null or JsonValueKind.Undefined => absent,
            _ => throw child.Malformed("is not an integer"),
        };
    }

    public InvalidDataException Malformed(string why) => new($"'{File}': {Part} {why}.");

    public NotSupportedException Unsupported() =>
        new($"'{File}': {Part} has type \"{Type}\", which this tokenizer does not support.");
}
