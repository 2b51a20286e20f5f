using System.Text.Json;

namespace Pipeline.Inference.Chat;

/// <summary>
/// The chat template(s) and special tokens a Hugging Face model folder declares, read the way
/// transformers reads them: <c>chat_template.jinja</c>, else <c>chat_template.json</c>, else
/// <c>tokenizer_config.json</c>'s <c>chat_template</c> (a string, or a list of named templates such as
/// <c>default</c> and <c>tool_use</c>). Special tokens may be strings or AddedToken objects.
/// </summary>
internal sealed class ChatTemplateConfig
{
    private static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"];

    private ChatTemplateConfig(IReadOnlyDictionary<string, string> templates, IReadOnlyDictionary<string, object?> specialTokens)
    {
        Templates = templates;
        SpecialTokens = specialTokens;
    }

    /// <summary>Template sources by name; a single unnamed template is called <c>default</c>.</summary>
    public IReadOnlyDictionary<string, string> Templates { get; }

    /// <summary>
    /// The special tokens transformers passes to every render (<c>bos_token</c>, <c>eos_token</c>, ...,
    /// <c>additional_special_tokens</c>); a token the config sets to null is absent, so it is undefined.
    /// </summary>
    public IReadOnlyDictionary<string, object?> SpecialTokens { get; }

    public string? BosToken => SpecialTokens.TryGetValue("bos_token", out var bos) ? bos as string : null;

    public string? EosToken => SpecialTokens.TryGetValue("eos_token", out var eos) ? eos as string : null;

    /// <summary>
    /// transformers' choice: the template named <c>tool_use</c> when the request has tools and the model
    /// has one, else <c>default</c>; null when the model has no template (callers fall back to a plain join).
    /// </summary>
    public string? Select(bool hasTools)
    {
        if (hasTools && Templates.TryGetValue("tool_use", out var toolUse)) return toolUse;
        return Templates.TryGetValue("default", out var fallback) ? fallback : null;
    }

    /// <summary>Reads a model folder; a folder without any of the files gives no templates and no tokens.</summary>
    public static ChatTemplateConfig LoadFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = File.Exists(configPath) ? FromTokenizerConfigFile(configPath) : new ChatTemplateConfig(new Dictionary<string, string>(), new Dictionary<string, object?>());
        var templates = new Dictionary<string, string>(config.Templates, StringComparer.Ordinal);
        string jsonPath = Path.Combine(folder, "chat_template.json");
        if (File.Exists(jsonPath))
        {
            using var document = ParseFile(jsonPath);
            if (!document.RootElement.TryGetProperty("chat_template", out var template)) throw new InvalidDataException($"{jsonPath}: no \"chat_template\" key");
            ReadTemplates(template, templates, jsonPath);
        }

        string jinjaPath = Path.Combine(folder, "chat_template.jinja");
        if (File.Exists(jinjaPath)) templates["default"] = File.ReadAllText(jinjaPath);
        return new ChatTemplateConfig(templates, config.SpecialTokens);
    }

    public static ChatTemplateConfig FromTokenizerConfigFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var document = ParseFile(path);
        return FromTokenizerConfig(document.RootElement, path);
    }

    public static ChatTemplateConfig FromTokenizerConfig(JsonElement root, string sourceName)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{sourceName}: expected a JSON object");
        var templates = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root.TryGetProperty("chat_template", out var template)) ReadTemplates(template, templates, sourceName);
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (string key in SpecialTokenKeys)
        {
            if (root.TryGetProperty(key, out var token) && TokenText(token, sourceName, key) is string text) tokens[key] = text;
        }

        if (root.TryGetProperty("additional_special_tokens", out var additional) && additional.ValueKind == JsonValueKind.Array)
        {
            tokens["additional_special_tokens"] = additional.EnumerateArray().Select(t => (object?)TokenText(t, sourceName, "additional_special_tokens")).ToList();
        }

        return new ChatTemplateConfig(templates, tokens);
    }

    private static JsonDocument ParseFile(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    private static void ReadTemplates(JsonElement template, Dictionary<string, string> templates, string sourceName)
    {
        switch (template.ValueKind)
        {
            case JsonValueKind.String:
                templates["default"] = template.GetString()!;
                break;
            case JsonValueKind.Array:
                foreach (var named in template.EnumerateArray())
                {
                    if (named.ValueKind != JsonValueKind.Object
                        || !named.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                        || !named.TryGetProperty("template", out var source) || source.ValueKind != JsonValueKind.String)
                    {
                        throw new InvalidDataException($"{sourceName}: each chat_template entry needs a string \"name\" and \"template\"");
                    }

                    templates[name.GetString()!] = source.GetString()!;
                }

                break;
            case JsonValueKind.Null:
                break;
            default:
                throw new InvalidDataException($"{sourceName}: chat_template must be a string or a list of named templates");
        }
    }

    // A special token is a string, null, or an AddedToken object whose "content" is the text.
    private static string? TokenText(JsonElement token, string sourceName, string key) => token.ValueKind switch
    {
        JsonValueKind.String => token.GetString(),
        JsonValueKind.Null => null,
        JsonValueKind.Object when token.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
        _ => throw new InvalidDataException($"{sourceName}: {key} must be a string, null or an object with \"content\""),
    };
}
