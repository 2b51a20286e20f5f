using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Server.Http;

/// <summary>How response JSON is written (compact, without HTML-safe escaping: no browser renders it), and how a client's JSON becomes nodes.</summary>
internal static class ApiJson
{
    private static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Write(JsonNode node) => node.ToJsonString(Options);

    /// <summary>
    /// A client's JSON value as a node, a property named twice taking its last value, as
    /// <see cref="JsonElement.TryGetProperty(string, out JsonElement)"/> reads it (and as OpenAI's
    /// own parser does). A node from <see cref="JsonNode.Parse(string, JsonNodeOptions?, JsonDocumentOptions)"/>
    /// keeps both and throws an <see cref="ArgumentException"/> once it is indexed or changed (a 500).
    /// </summary>
    public static JsonNode? ToNode(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var node = new JsonObject();
                foreach (var property in element.EnumerateObject()) node[property.Name] = ToNode(property.Value);
                return node;
            case JsonValueKind.Array:
                var array = new JsonArray();
                foreach (var item in element.EnumerateArray()) array.Add(ToNode(item));
                return array;
            case JsonValueKind.Null:
                return null;
            default:
                // A copy, as JsonNode.Parse makes: the node outlives the request's document.
                return JsonValue.Create(element.Clone());
        }
    }
}
