using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Inference.Chat;

namespace Pipeline.Integration.ChatTemplates;

using ChatTemplate = Pipeline.Inference.Chat.ChatTemplate;

/// <summary>Reads the chat-template fixtures: the real templates, the public reference renders, and the Python jinja2 renders.</summary>
internal static class ChatTemplateFixtures
{
    public static string Folder => Path.Combine(RepoPaths.Root, "tests", "fixtures", "chat-templates");

    public static string PythonFolder => Path.Combine(Folder, "python-jinja2");

    /// <summary>A template by the name the reference files use: a <c>.jinja</c> file name, or <c>llama3-tokenizer_config</c>/<c>qwen3-tokenizer_config</c>.</summary>
    public static string Source(string name)
    {
        const string ConfigSuffix = "-tokenizer_config";
        if (!name.EndsWith(ConfigSuffix, StringComparison.Ordinal)) return File.ReadAllText(Path.Combine(Folder, name));
        string config = Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", name[..^ConfigSuffix.Length], "tokenizer_config.json");
        using var document = JsonDocument.Parse(File.ReadAllText(config));
        return document.RootElement.GetProperty("chat_template").GetString()!;
    }

    public static IEnumerable<JsonObject> ReadJsonLines(string path) =>
        File.ReadLines(path).Where(line => line.Length > 0).Select(line => JsonNode.Parse(line)!.AsObject());

    /// <summary>The input transformers would pass: messages, add_generation_prompt, the two tokens, every other key as a variable.</summary>
    public static ChatTemplateInput Input(JsonObject variables, string? bosToken, string? eosToken, DateTimeOffset? now = null)
    {
        var extra = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in variables)
        {
            if (key is not ("messages" or "add_generation_prompt" or "bos_token" or "eos_token")) extra[key] = value;
        }

        return new ChatTemplateInput
        {
            Messages = variables["messages"] ?? new JsonArray(),
            AddGenerationPrompt = variables["add_generation_prompt"]?.GetValue<bool>() ?? false,
            BosToken = bosToken ?? variables["bos_token"]?.GetValue<string>(),
            EosToken = eosToken ?? variables["eos_token"]?.GetValue<string>(),
            Variables = extra,
            Now = now,
        };
    }

    public static DateTimeOffset? Now(JsonObject record) =>
        record["now"] is JsonNode now ? DateTimeOffset.Parse(now.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <summary>Renders, giving the text or the exception.</summary>
    public static (string? Rendered, ChatTemplateException? Error) TryRender(ChatTemplate template, ChatTemplateInput input)
    {
        try
        {
            return (template.Render(input), null);
        }
        catch (ChatTemplateException e)
        {
            return (null, e);
        }
    }
}
