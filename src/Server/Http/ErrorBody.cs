using System.Text.Json.Nodes;

namespace Pipeline.Server.Http;

/// <summary>OpenAI's error JSON: <c>{"error":{"message","type","param","code"}}</c>.</summary>
internal static class ErrorBody
{
    public static JsonObject Create(string message, string type, string? param, string? code) => new()
    {
        ["error"] = new JsonObject
        {
            ["message"] = message,
            ["type"] = type,
            ["param"] = param,
            ["code"] = code,
        },
    };
}
