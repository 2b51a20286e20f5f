using System.Text.Json.Nodes;
using Pipeline.Inference.Chat;
using Xunit.Abstractions;

namespace Pipeline.Integration.ChatTemplates;

using ChatTemplate = Pipeline.Inference.Chat.ChatTemplate;

/// <summary>
/// The public reference: 2 conversations through the 17 fixture templates and the llama3/qwen3
/// <c>chat_template</c>s, rendered by an independent implementation (@huggingface/jinja under Node).
/// Where it rendered, the text must be equal; where it failed, Python jinja2 is the authority (see
/// tests/fixtures/chat-templates/SOURCE.md): raise where the template calls raise_exception, render
/// (or fail) exactly as the Python reference in python-jinja2/renders.jsonl does.
/// </summary>
public sealed class PublicReferenceRenderTests(ITestOutputHelper output)
{
    private static List<JsonObject> References() =>
        [.. ChatTemplateFixtures.ReadJsonLines(Path.Combine(ChatTemplateFixtures.Folder, "public-renders.jsonl"))];

    private static JsonArray Chats() => JsonNode.Parse(File.ReadAllText(Path.Combine(ChatTemplateFixtures.Folder, "public-chats.json")))!.AsArray();

    private static (string? Rendered, ChatTemplateException? Error) RenderReference(JsonObject reference)
    {
        var chat = Chats()[reference["chat"]!.GetValue<int>()]!.AsObject();
        var template = ChatTemplate.Parse(ChatTemplateFixtures.Source(reference["template"]!.GetValue<string>()));
        var input = ChatTemplateFixtures.Input(chat, reference["bos_token"]!.GetValue<string>(), reference["eos_token"]!.GetValue<string>());
        return ChatTemplateFixtures.TryRender(template, input);
    }

    public static TheoryData<string, int> RenderedReferences()
    {
        var data = new TheoryData<string, int>();
        foreach (var r in References().Where(r => r["rendered"] is not null)) data.Add(r["template"]!.GetValue<string>(), r["chat"]!.GetValue<int>());
        return data;
    }

    public static TheoryData<string, int> FailedReferences()
    {
        var data = new TheoryData<string, int>();
        foreach (var r in References().Where(r => r["error"] is not null)) data.Add(r["template"]!.GetValue<string>(), r["chat"]!.GetValue<int>());
        return data;
    }

    private static JsonObject Find(string template, int chat) =>
        References().Single(r => r["template"]!.GetValue<string>() == template && r["chat"]!.GetValue<int>() == chat);

    [Theory]
    [MemberData(nameof(RenderedReferences))]
    public void Render_gives_the_reference_text_wherever_the_reference_rendered(string template, int chat)
    {
        var reference = Find(template, chat);
        var (rendered, error) = RenderReference(reference);

        Assert.Null(error);
        Assert.Equal(reference["rendered"]!.GetValue<string>(), rendered);
    }

    [Fact]
    public void Render_matches_every_available_reference_render()
    {
        var rendered = References().Where(r => r["rendered"] is not null).ToList();
        int matched = rendered.Count(r => RenderReference(r).Rendered == r["rendered"]!.GetValue<string>());
        output.WriteLine($"public reference renders matched: {matched} of {rendered.Count} (of {References().Count} records)");

        Assert.Equal(rendered.Count, matched);
    }

    [Theory]
    [MemberData(nameof(FailedReferences))]
    public void Render_does_what_python_jinja2_does_where_the_node_reference_failed(string template, int chat)
    {
        var (rendered, error) = RenderReference(Find(template, chat));
        var python = PythonReference(template, chat);

        if (python["rendered"] is JsonNode expected)
        {
            Assert.Null(error);
            Assert.Equal(expected.GetValue<string>(), rendered);
        }
        else
        {
            Assert.NotNull(error);
            bool raised = python["raised"]!.GetValue<bool>();
            Assert.Equal(raised, error.RaisedByTemplate);
            if (raised) Assert.Equal(python["error"]!.GetValue<string>(), error.Message);
        }
    }

    [Fact]
    public void Gemma_2_raises_its_own_message_on_a_system_message()
    {
        var (_, error) = RenderReference(Find("google-gemma-2-2b-it.jinja", 1));

        Assert.NotNull(error);
        Assert.True(error.RaisedByTemplate);
        Assert.Equal("System role not supported", error.Message);
    }

    [Fact]
    public void Tool_use_templates_render_without_tools_where_node_failed_on_the_undefined_loop()
    {
        foreach (string name in new[] { "CohereForAI-c4ai-command-r-plus-tool_use.jinja", "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "meetkai-functionary-medium-v3.1.jinja" })
        {
            var (rendered, error) = RenderReference(Find(name, 1));
            Assert.Null(error);
            Assert.Contains("What is 2+2?", rendered, StringComparison.Ordinal);
        }
    }

    // The Python render of the same public conversation (python-jinja2 renders each distinct template once).
    private static JsonObject PythonReference(string template, int chat)
    {
        string source = ChatTemplateFixtures.Source(template);
        var records = ChatTemplateFixtures.ReadJsonLines(Path.Combine(ChatTemplateFixtures.PythonFolder, "renders.jsonl")).ToList();
        string pythonName = records.Select(r => r["template"]!.GetValue<string>()).Distinct().First(n => ChatTemplateFixtures.Source(n) == source);
        return records.Single(r => r["template"]!.GetValue<string>() == pythonName && r["conversation"]!.GetValue<string>() == $"public{chat}" && r["now"] is null);
    }
}
