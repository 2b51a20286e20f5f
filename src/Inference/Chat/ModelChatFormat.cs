using System.Text.Json.Nodes;
using Pipeline.Inference.Sampling;

namespace Pipeline.Inference.Chat;

/// <summary>
/// How one model turns a conversation into its prompt: the model's own Jinja chat template (from
/// <c>chat_template.jinja</c>, <c>chat_template.json</c>, <c>tokenizer_config.json</c> or GGUF
/// <c>tokenizer.chat_template</c>) rendered with its bos/eos token texts, or, for a model without one
/// (the embedded stories260K), every message's content joined by a newline. Immutable; the parsed
/// templates are shared by every request.
/// </summary>
internal sealed class ModelChatFormat
{
    private readonly ChatTemplate? _default;
    private readonly ChatTemplate? _toolUse;

    private ModelChatFormat(ChatTemplate? @default, ChatTemplate? toolUse, string? bosToken, string? eosToken)
    {
        _default = @default;
        _toolUse = toolUse;
        BosToken = bosToken;
        EosToken = eosToken;
    }

    /// <summary>The format of a model without a template: contents joined by newlines.</summary>
    public static ModelChatFormat PlainJoin { get; } = new(null, null, null, null);

    public bool HasTemplate => _default is not null;

    public string? BosToken { get; }

    public string? EosToken { get; }

    /// <summary>
    /// Reads the templates of a model folder (Hugging Face files) or, failing those, the one a GGUF
    /// carries (<paramref name="ggufTemplate"/>); bos/eos texts from the same place.
    /// </summary>
    public static ModelChatFormat Load(string folder, string? ggufTemplate, string? ggufBos, string? ggufEos)
    {
        var config = ChatTemplateConfig.LoadFolder(folder);
        string? source = config.Select(hasTools: false) ?? ggufTemplate;
        if (source is null) return PlainJoin;
        string? toolSource = config.Select(hasTools: true);
        var parsed = Parse(source);
        return new ModelChatFormat(
            parsed,
            toolSource is null || ReferenceEquals(toolSource, source) ? parsed : Parse(toolSource),
            config.BosToken ?? ggufBos,
            config.EosToken ?? ggufEos);
    }

    /// <summary>
    /// The prompt for <paramref name="messages"/> (objects with <c>role</c> and <c>content</c>, as the
    /// OpenAI API sends them), ending with the assistant's turn opened. A rendered template spells
    /// the special tokens itself, so its text is encoded without the tokenizer adding any
    /// (as transformers' <c>apply_chat_template</c> does); the plain join adds them as a completion would.
    /// Throws <see cref="InvalidRequestException"/> with the template's own message when it raises.
    /// </summary>
    public ChatPrompt Format(JsonArray messages, JsonObject? variables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (_default is null)
        {
            var text = string.Join('\n', messages.Select(m => m?["content"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : ""));
            return new ChatPrompt(text, AddSpecialTokens: true);
        }
        bool hasTools = variables?["tools"] is JsonArray { Count: > 0 };
        var template = hasTools ? _toolUse ?? _default : _default;
        var extra = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (variables is not null)
            foreach (var (key, value) in variables) extra[key] = value;
        try
        {
            string rendered = template.Render(new ChatTemplateInput
            {
                Messages = messages,
                AddGenerationPrompt = true,
                BosToken = BosToken,
                EosToken = EosToken,
                Variables = extra,
                Now = DateTimeOffset.UtcNow,
            });
            return new ChatPrompt(rendered, AddSpecialTokens: false);
        }
        catch (ChatTemplateException e)
        {
            throw new InvalidRequestException("messages", e.Message);
        }
    }

    private static ChatTemplate Parse(string source)
    {
        try
        {
            return ChatTemplate.Parse(source);
        }
        catch (ChatTemplateException e)
        {
            throw new InvalidDataException($"the model's chat template does not parse: {e.Message}", e);
        }
    }
}

/// <summary>A rendered conversation and whether the tokenizer should still add its special tokens.</summary>
internal sealed record ChatPrompt(string Text, bool AddSpecialTokens);
