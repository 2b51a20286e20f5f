using System.Text.Json;
using Pipeline.Server.Http;

namespace Pipeline.Server.OpenAi;

/// <summary>
/// The bounds OpenAI's API puts on a request beyond what the engine itself requires: temperature
/// 0..2, at most four stop strings of bounded length, the known message roles, and a prompt plus
/// an explicit max_tokens that fit the context (the engine checks that once it has the prompt's
/// length). Kept apart from the parser, which reads types; this reads ranges.
/// </summary>
internal static class ApiLimits
{
    public const float MaxTemperature = 2f;
    public const int MaxStopStrings = 4;
    /// <summary>Stop strings are matched on every token; a bounded length keeps that cheap.</summary>
    public const int MaxStopBytes = 256;

    private static readonly string[] Roles = ["system", "user", "assistant", "tool", "developer"];

    /// <summary>Throws a 400 naming the first parameter out of range; returns the request as the engine should run it.</summary>
    public static ApiRequest Check(JsonElement body, ApiRequest request)
    {
        var generation = request.Generation;
        float temperature = generation.Sampling.Temperature;
        if (temperature > MaxTemperature)
            throw ApiException.InvalidParameter("temperature", $"temperature must be between 0 and {MaxTemperature}; got {temperature.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
        if (generation.Stop.Count > MaxStopStrings)
            throw ApiException.InvalidParameter("stop", $"stop may hold at most {MaxStopStrings} strings; got {generation.Stop.Count}.");
        foreach (var stop in generation.Stop)
            if (System.Text.Encoding.UTF8.GetByteCount(stop) > MaxStopBytes)
                throw ApiException.InvalidParameter("stop", $"each stop string may be at most {MaxStopBytes} bytes of UTF-8; one is {System.Text.Encoding.UTF8.GetByteCount(stop)}.");
        if (body.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var message in messages.EnumerateArray())
            {
                if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String
                    && !Roles.Contains(role.GetString(), StringComparer.Ordinal))
                    throw ApiException.InvalidParameter($"messages[{i}].role", $"messages[{i}].role must be one of {string.Join(", ", Roles)}; got '{role.GetString()}'.");
                i++;
            }
        }
        // A client that names max_tokens wants that many or a 400 (as OpenAI and vLLM answer);
        // without it, generation runs to the end of the context.
        bool named = Named(body, "max_tokens") || Named(body, "max_completion_tokens");
        return named
            ? request with
            {
                Generation = generation with { MaxTokensMustFit = true },
                Prompts = request.Prompts.Select(p => p with { MaxTokensMustFit = true }).ToArray(),
            }
            : request;
    }

    private static bool Named(JsonElement body, string name) => body.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;
}
