using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Inference.Chat;

namespace Pipeline.Integration.ChatTemplates;

using ChatTemplate = Pipeline.Inference.Chat.ChatTemplate;

/// <summary>Where a model's chat template and special tokens come from, and the chat-template command's line format.</summary>
public sealed class ChatTemplateConfigTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("chat-template-config-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string TokenizerConfig(string model) => Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", model, "tokenizer_config.json");

    [Fact]
    public void Tokenizer_config_gives_the_template_and_special_tokens_of_llama3_and_qwen3()
    {
        var llama3 = ChatTemplateConfig.FromTokenizerConfigFile(TokenizerConfig("llama3"));
        var qwen3 = ChatTemplateConfig.FromTokenizerConfigFile(TokenizerConfig("qwen3"));

        Assert.Equal(ChatTemplateFixtures.Source("llama3-tokenizer_config"), llama3.Select(hasTools: false));
        Assert.Equal("<|begin_of_text|>", llama3.BosToken);
        Assert.Equal("<|end_of_text|>", llama3.EosToken);
        Assert.Null(qwen3.BosToken);
        Assert.Equal("<|im_end|>", qwen3.EosToken);
        Assert.Equal("<|endoftext|>", qwen3.SpecialTokens["pad_token"]);
        Assert.Contains("<|im_start|>", (List<object?>)qwen3.SpecialTokens["additional_special_tokens"]!);
    }

    [Fact]
    public void Named_templates_pick_tool_use_only_when_the_request_has_tools()
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), """
            {"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
             "chat_template": [{"name": "default", "template": "plain"}, {"name": "tool_use", "template": "tools"}]}
            """);
        var config = ChatTemplateConfig.LoadFolder(_folder);

        Assert.Equal("plain", config.Select(hasTools: false));
        Assert.Equal("tools", config.Select(hasTools: true));
        Assert.Equal("<s>", config.BosToken);
    }

    [Fact]
    public void Chat_template_jinja_beside_the_config_wins_as_in_transformers()
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), """{"chat_template": "old"}""");
        File.WriteAllText(Path.Combine(_folder, "chat_template.jinja"), "new");

        Assert.Equal("new", ChatTemplateConfig.LoadFolder(_folder).Select(hasTools: false));
    }

    [Fact]
    public void A_folder_without_a_template_selects_none()
    {
        Assert.Null(ChatTemplateConfig.LoadFolder(_folder).Select(hasTools: false));
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), """{"bos_token": "<s>", "eos_token": "</s>", "tokenizer_class": "LlamaTokenizer"}""");
        Assert.Null(ChatTemplateConfig.LoadFolder(_folder).Select(hasTools: true));
    }

    [Fact]
    public void A_malformed_config_is_an_invalid_data_error_naming_the_file()
    {
        string path = Path.Combine(_folder, "tokenizer_config.json");
        File.WriteAllText(path, """{"chat_template": 42}""");

        var error = Assert.Throws<InvalidDataException>(() => ChatTemplateConfig.LoadFolder(_folder));
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_line_renders_or_reports_the_error_as_a_json_line()
    {
        var template = ChatTemplate.Parse(ChatTemplateFixtures.Source("google-gemma-2-2b-it.jinja"));

        string ok = ChatTemplateJsonLine.Render(template, """{"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true}""", "<bos>", "<eos>");
        string raised = ChatTemplateJsonLine.Render(template, """{"messages": [{"role": "system", "content": "S"}]}""", "<bos>", "<eos>");
        string malformed = ChatTemplateJsonLine.Render(template, "{not json", null, null);

        Assert.Equal("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", JsonNode.Parse(ok)!["rendered"]!.GetValue<string>());
        Assert.Contains("<start_of_turn>", ok, StringComparison.Ordinal);
        Assert.Equal("System role not supported", JsonNode.Parse(raised)!["error"]!.GetValue<string>());
        Assert.StartsWith("invalid JSON", JsonNode.Parse(malformed)!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("\"bos_token\" must be a string", JsonNode.Parse(ChatTemplateJsonLine.Render(template, """{"messages": [], "bos_token": 5}""", null, null))!["error"]!.GetValue<string>());
        Assert.Equal("the request has no \"messages\" array", JsonNode.Parse(ChatTemplateJsonLine.Render(template, "{}", null, null))!["error"]!.GetValue<string>());
    }

    [Fact]
    public void Json_line_takes_the_tokens_from_the_line_before_the_models_defaults()
    {
        var template = ChatTemplate.Parse("{{ bos_token }}|{{ eos_token }}|{{ tools|length }}");
        string line = ChatTemplateJsonLine.Render(template, """{"messages": [], "bos_token": "<s>", "tools": [{"name": "t"}]}""", "<default-bos>", "<default-eos>");

        Assert.Equal("<s>|<default-eos>|1", JsonSerializer.Deserialize<JsonObject>(line)!["rendered"]!.GetValue<string>());
    }
}
