using System.Text.Json.Nodes;

namespace Pipeline.Inference.Chat;

/// <summary>
/// The variables a chat template renders with, as transformers' <c>apply_chat_template</c> passes them.
/// Values may be <see cref="JsonNode"/>, <see cref="System.Text.Json.JsonElement"/>, CLR scalars,
/// dictionaries or lists. A variable left null/absent is <em>undefined</em> in the template (so
/// <c>tools is defined</c> is false and <c>for t in tools</c> iterates nothing).
/// </summary>
internal sealed class ChatTemplateInput
{
    /// <summary>The conversation: a list of messages, each an object with <c>role</c>, <c>content</c> (a string or a list of parts), <c>tool_calls</c>, ...</summary>
    public required object Messages { get; init; }

    public bool AddGenerationPrompt { get; init; }

    /// <summary>The tokenizer's BOS text; null leaves <c>bos_token</c> undefined.</summary>
    public string? BosToken { get; init; }

    /// <summary>The tokenizer's EOS text; null leaves <c>eos_token</c> undefined.</summary>
    public string? EosToken { get; init; }

    /// <summary>Further variables: <c>tools</c>, <c>documents</c>, <c>date_string</c>, <c>enable_thinking</c>, other special tokens, ...</summary>
    public IReadOnlyDictionary<string, object?> Variables { get; init; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>
    /// The time <c>strftime_now(format)</c> reports. Null leaves <c>strftime_now</c> undefined, so templates
    /// take their fallback date (Llama 3.2's "26 Jul 2024"); pass the request's time for transformers' behaviour.
    /// </summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>
    /// Reads the input shape of <c>pipeline chat-template</c>: <c>{"messages": [...], "add_generation_prompt":
    /// true, "bos_token": "&lt;s&gt;", "eos_token": "&lt;/s&gt;", ...}</c>; every other key becomes a variable.
    /// </summary>
    public static ChatTemplateInput FromJson(JsonObject request, string? defaultBosToken = null, string? defaultEosToken = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var messages = request["messages"] as JsonArray ?? throw new ChatTemplateException("the request has no \"messages\" array");
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in request)
        {
            if (key is "messages" or "add_generation_prompt" or "bos_token" or "eos_token") continue;
            variables[key] = value;
        }

        return new ChatTemplateInput
        {
            Messages = messages,
            AddGenerationPrompt = request["add_generation_prompt"] is JsonValue flag && flag.TryGetValue<bool>(out bool add) && add,
            BosToken = TokenText(request, "bos_token") ?? defaultBosToken,
            EosToken = TokenText(request, "eos_token") ?? defaultEosToken,
            Variables = variables,
        };
    }

    private static string? TokenText(JsonObject request, string key) => request[key] switch
    {
        null => null,
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        _ => throw new ChatTemplateException($"\"{key}\" must be a string"),
    };
}
