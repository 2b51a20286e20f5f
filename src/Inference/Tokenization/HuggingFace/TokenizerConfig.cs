using System.Text.Json;

namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>What a tokenizer needs from <c>tokenizer_config.json</c>; all null when there is no such file.</summary>
internal sealed record TokenizerConfig(string? BosToken, string? EosToken, bool? AddBosToken, bool? AddEosToken, string? ChatTemplate, string? TokenizerClass)
{
    /// <summary>
    /// Whether transformers rebuilds the post-processor from add_bos_token/add_eos_token for this
    /// tokenizer class (LlamaTokenizerFast, GemmaTokenizerFast and kin); other classes keep tokenizer.json's.
    /// </summary>
    public bool FlagsDecideSpecialTokens => TokenizerClass is { } name
        && (name.StartsWith("Llama", StringComparison.Ordinal) || name.StartsWith("CodeLlama", StringComparison.Ordinal) || name.StartsWith("Gemma", StringComparison.Ordinal));

    public static TokenizerConfig Read(string? path)
    {
        if (path is null)
        {
            return new TokenizerConfig(null, null, null, null, null, null);
        }

        using var document = HuggingFaceTokenizer.ParseJson(path);
        var root = new JsonComponent(document.RootElement, path, "tokenizer_config.json");
        if (root.Element.ValueKind != JsonValueKind.Object)
        {
            throw root.Malformed("is not a JSON object");
        }

        return new TokenizerConfig(
            TokenText(root.Child("bos_token")),
            TokenText(root.Child("eos_token")),
            OptionalBool(root.Child("add_bos_token")),
            OptionalBool(root.Child("add_eos_token")),
            ChatTemplateOf(root.Child("chat_template")),
            root.OptionalString("tokenizer_class"));
    }

    /// <summary>A token written as a string or as an object with "content".</summary>
    private static string? TokenText(JsonComponent c) => c.Element.ValueKind switch
    {
        JsonValueKind.String => c.Element.GetString(),
        JsonValueKind.Object => c.RequiredString("content"),
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => throw c.Malformed("is neither a string nor a token object"),
    };

    private static bool? OptionalBool(JsonComponent c) => c.Element.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => throw c.Malformed("is not a bool"),
    };

    /// <summary>A template string, or a list of named templates of which "default" (else the first) is taken.</summary>
    private static string? ChatTemplateOf(JsonComponent c)
    {
        switch (c.Element.ValueKind)
        {
            case JsonValueKind.String:
                return c.Element.GetString();
            case JsonValueKind.Array:
                var named = c.Element.EnumerateArray()
                    .Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("template", out _))
                    .Select(e => (Name: e.TryGetProperty("name", out var n) ? n.GetString() : null, Template: e.GetProperty("template").GetString()))
                    .ToList();
                return named.FirstOrDefault(t => t.Name == "default").Template ?? named.FirstOrDefault().Template;
            case JsonValueKind.Null or JsonValueKind.Undefined:
                return null;
            default:
                throw c.Malformed("is neither a string nor a list of named templates");
        }
    }
}
