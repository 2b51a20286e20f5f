using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Inference.Sampling;
using Pipeline.Server.Http;

namespace Pipeline.Server.OpenAi;

/// <summary>
/// Reads the JSON body of a completion or chat request by hand rather than by deserialization,
/// so that every wrong type is reported as a 400 naming the parameter, as OpenAI does.
/// Unknown fields are ignored (clients send many we do not use, such as <c>user</c>).
/// </summary>
internal static class ApiRequestParser
{
    /// <summary>The most alternatives per token the engine reports (it checks top_logprobs against the same bound).</summary>
    private const int MaxTopLogprobs = GenerationRequest.MaxTopLogprobs;

    public static ApiRequest ParseCompletion(JsonElement body, int maxSamples)
    {
        RequireObject(body);
        var prompts = Prompts(body);
        // Legacy completions spell "how many alternatives" as logprobs itself; check it under that name.
        int? logprobs = OptionalInt(body, "logprobs");
        if (logprobs is < 0 or > MaxTopLogprobs)
            throw ApiException.InvalidParameter("logprobs", $"logprobs must be between 0 and {MaxTopLogprobs}; got {logprobs}.");
        var request = Common(body, prompts[0], maxSamples);
        var generations = prompts.Select(p => p with
        {
            MaxTokens = request.Generation.MaxTokens, Sampling = request.Generation.Sampling, Seed = request.Generation.Seed,
            Stop = request.Generation.Stop, IgnoreEos = request.Generation.IgnoreEos, Logprobs = logprobs is not null, TopLogprobs = logprobs ?? 0,
        }).ToArray();
        if (generations.Length * request.SampleCount > maxSamples)
            throw ApiException.InvalidParameter("prompt", $"prompts × n must be at most {maxSamples}; got {generations.Length} × {request.SampleCount}.");
        return request with { Generation = generations[0], Prompts = generations };
    }

    /// <summary>
    /// The OpenAI API's four prompt shapes: a string, an array of strings, an array of token ids,
    /// or an array of token-id arrays. Token ids are used as given (the tokenizer adds nothing).
    /// </summary>
    private static GenerationRequest[] Prompts(JsonElement body) => Property(body, "prompt") switch
    {
        { ValueKind: JsonValueKind.String } s => [new GenerationRequest { Prompt = s.GetString()! }],
        { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() == 0 => throw ApiException.InvalidParameter("prompt", "prompt must not be an empty array."),
        { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
            => a.EnumerateArray().Select(e => new GenerationRequest { Prompt = e.GetString()! }).ToArray(),
        { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number)
            => [new GenerationRequest { PromptIds = TokenIds(a, "prompt") }],
        { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Array)
            => a.EnumerateArray().Select((e, i) => new GenerationRequest { PromptIds = TokenIds(e, $"prompt[{i}]") }).ToArray(),
        { ValueKind: JsonValueKind.Array } => throw ApiException.InvalidParameter("prompt", "prompt must be a string, an array of strings, an array of token ids, or an array of token-id arrays."),
        null => throw ApiException.InvalidParameter("prompt", "prompt is required."),
        _ => throw ApiException.InvalidParameter("prompt", "prompt must be a string, an array of strings, or token ids."),
    };

    private static int[] TokenIds(JsonElement array, string param)
    {
        if (array.GetArrayLength() == 0) throw ApiException.InvalidParameter("prompt", $"{param} must not be an empty list of token ids.");
        return array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id) && id >= 0
            ? id
            : throw ApiException.InvalidParameter("prompt", $"{param} must hold non-negative integer token ids.")).ToArray();
    }

    /// <summary>
    /// A chat request: the messages are checked here (types), then rendered into a prompt by
    /// <paramref name="createChat"/> (the model's chat template; it throws an ArgumentException,
    /// answered as a 400 with the template's message, when the template refuses the conversation).
    /// </summary>
    public static ApiRequest ParseChat(JsonElement body, int maxSamples, Func<JsonArray, JsonObject?, GenerationRequest> createChat)
    {
        ArgumentNullException.ThrowIfNull(createChat);
        RequireObject(body);
        if (Property(body, "messages") is not { ValueKind: JsonValueKind.Array } messages || messages.GetArrayLength() == 0)
            throw ApiException.InvalidParameter("messages", "messages must be a non-empty array.");
        var turns = new JsonArray();
        int index = 0;
        foreach (var m in messages.EnumerateArray())
        {
            var (role, content) = ReadMessage(m, index++);
            // The message as sent (tool_calls, name, ...), with its content as one string.
            var turn = ApiJson.ToNode(m)!.AsObject();
            turn["role"] = role;
            turn["content"] = content;
            turns.Add(turn);
        }
        JsonObject? variables = null;
        if (Present(body, "tools") is { ValueKind: JsonValueKind.Array } tools)
            variables = new JsonObject { ["tools"] = ApiJson.ToNode(tools) };
        var chat = createChat(turns, variables);
        bool logprobs = OptionalBool(body, "logprobs") ?? false;
        int? top = OptionalInt(body, "top_logprobs");
        if (top is not null && !logprobs)
            throw ApiException.InvalidParameter("top_logprobs", "top_logprobs requires logprobs to be true.");
        var request = Common(body, chat, maxSamples);
        var generation = request.Generation with { Logprobs = logprobs, TopLogprobs = top ?? 0 };
        return request with { Generation = generation, Prompts = [generation] };
    }

    private static (string Role, string Content) ReadMessage(JsonElement message, int index)
    {
        string param = $"messages[{index}]";
        if (message.ValueKind != JsonValueKind.Object) throw ApiException.InvalidParameter(param, $"{param} must be an object.");
        var role = Property(message, "role") is { ValueKind: JsonValueKind.String } r ? r.GetString()! : throw ApiException.InvalidParameter($"{param}.role", $"{param}.role must be a string.");
        var content = Property(message, "content") switch
        {
            { ValueKind: JsonValueKind.String } s => s.GetString()!,
            // Content parts: only text parts mean anything to a text model.
            { ValueKind: JsonValueKind.Array } parts => string.Concat(parts.EnumerateArray().Select(p =>
                p.ValueKind == JsonValueKind.Object && Property(p, "text") is { ValueKind: JsonValueKind.String } t ? t.GetString()
                    : throw ApiException.InvalidParameter($"{param}.content", $"{param}.content parts must be text parts."))),
            null or { ValueKind: JsonValueKind.Null } => "",
            _ => throw ApiException.InvalidParameter($"{param}.content", $"{param}.content must be a string or an array of text parts."),
        };
        return (role, content);
    }

    private static ApiRequest Common(JsonElement body, GenerationRequest prompt, int maxSamples)
    {
        int samples = OptionalInt(body, "n") ?? 1;
        if (samples < 1 || samples > maxSamples) throw ApiException.InvalidParameter("n", $"n must be between 1 and {maxSamples}; got {samples}.");
        int? maxTokens = OptionalInt(body, "max_completion_tokens") ?? OptionalInt(body, "max_tokens");
        if (maxTokens is < 1)
        {
            string name = Property(body, "max_completion_tokens") is not null ? "max_completion_tokens" : "max_tokens";
            throw ApiException.InvalidParameter(name, $"{name} must be at least 1; got {maxTokens}.");
        }
        bool includeUsage = false;
        if (Property(body, "stream_options") is { } streamOptions && streamOptions.ValueKind != JsonValueKind.Null)
        {
            if (streamOptions.ValueKind != JsonValueKind.Object) throw ApiException.InvalidParameter("stream_options", "stream_options must be an object.");
            includeUsage = OptionalBool(streamOptions, "include_usage", "stream_options.include_usage") ?? false;
        }
        string? model = OptionalString(body, "model");
        var generation = prompt with
        {
            MaxTokens = maxTokens ?? GenerationRequest.DefaultMaxTokens,
            Sampling = new SamplingOptions
            {
                Temperature = OptionalFloat(body, "temperature") ?? SamplingOptions.Default.Temperature,
                TopP = OptionalFloat(body, "top_p") ?? SamplingOptions.Default.TopP,
                TopK = OptionalInt(body, "top_k") ?? SamplingOptions.Default.TopK,
                MinP = OptionalFloat(body, "min_p") ?? SamplingOptions.Default.MinP,
                RepetitionPenalty = OptionalFloat(body, "repetition_penalty") ?? SamplingOptions.Default.RepetitionPenalty,
            },
            Seed = OptionalSeed(body),
            Stop = Stop(body),
            IgnoreEos = OptionalBool(body, "ignore_eos") ?? false,
        };
        return new ApiRequest
        {
            Model = model,
            Generation = generation,
            Prompts = [generation],
            Stream = OptionalBool(body, "stream") ?? false,
            IncludeUsage = includeUsage,
            SampleCount = samples,
        };
    }

    private static void RequireObject(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) throw ApiException.InvalidBody("The request body must be a JSON object.");
    }

    private static JsonElement? Property(JsonElement o, string name) => o.TryGetProperty(name, out var v) ? v : null;

    private static JsonElement? Present(JsonElement o, string name) => Property(o, name) is { ValueKind: not JsonValueKind.Null } v ? v : null;

    private static string? OptionalString(JsonElement o, string name) => Present(o, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } s => s.GetString(),
        _ => throw ApiException.InvalidParameter(name, $"{name} must be a string."),
    };

    private static bool? OptionalBool(JsonElement o, string name, string? param = null) => Present(o, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw ApiException.InvalidParameter(param ?? name, $"{param ?? name} must be a boolean."),
    };

    private static int? OptionalInt(JsonElement o, string name) => Present(o, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } n when n.TryGetInt32(out int i) => i,
        _ => throw ApiException.InvalidParameter(name, $"{name} must be an integer."),
    };

    private static float? OptionalFloat(JsonElement o, string name) => Present(o, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } n when n.TryGetDouble(out double d) && double.IsFinite(d) => (float)d,
        _ => throw ApiException.InvalidParameter(name, $"{name} must be a number."),
    };

    // OpenAI documents seed as a signed 64-bit integer; the engine's seeds are unsigned. Negative
    // seeds keep their bits, so every int64 a client sends names a distinct, replayable stream.
    private static ulong? OptionalSeed(JsonElement o) => Present(o, "seed") switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } n when n.TryGetUInt64(out ulong u) => u,
        { ValueKind: JsonValueKind.Number } n when n.TryGetInt64(out long l) => unchecked((ulong)l),
        _ => throw ApiException.InvalidParameter("seed", "seed must be an integer."),
    };

    private static string[] Stop(JsonElement o) => Present(o, "stop") switch
    {
        null => [],
        { ValueKind: JsonValueKind.String } s => [s.GetString()!],
        { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
            => a.EnumerateArray().Select(e => e.GetString()!).Where(s => s.Length > 0).ToArray(),
        _ => throw ApiException.InvalidParameter("stop", "stop must be a string or an array of strings."),
    };
}
