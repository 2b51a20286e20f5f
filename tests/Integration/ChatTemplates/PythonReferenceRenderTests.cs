using System.Text.Json.Nodes;
using Pipeline.Inference.Chat;

namespace Pipeline.Integration.ChatTemplates;

using ChatTemplate = Pipeline.Inference.Chat.ChatTemplate;

/// <summary>
/// Differential tests against Python jinja2 3.1.6 configured as transformers configures it
/// (python-jinja2/generate.py): every distinct fixture template over 20 conversations (tools, tool
/// calls, documents, thinking, content parts, Unicode, bad role order, empty), and 155 snippets that
/// exercise each construct and quirk. Renders must be equal; errors must be errors, and raise_exception's
/// message exact.
/// </summary>
public sealed class PythonReferenceRenderTests
{
    public static TheoryData<int> TemplateRecords() => Indices("renders.jsonl");

    public static TheoryData<int> SnippetRecords() => Indices("snippets.jsonl");

    private static TheoryData<int> Indices(string file)
    {
        var data = new TheoryData<int>();
        int count = ChatTemplateFixtures.ReadJsonLines(Path.Combine(ChatTemplateFixtures.PythonFolder, file)).Count();
        for (int i = 0; i < count; i++) data.Add(i);
        return data;
    }

    private static JsonObject Record(string file, int index) =>
        ChatTemplateFixtures.ReadJsonLines(Path.Combine(ChatTemplateFixtures.PythonFolder, file)).ElementAt(index);

    [Theory]
    [MemberData(nameof(TemplateRecords))]
    public void Render_of_a_real_template_equals_python_jinja2(int index)
    {
        var record = Record("renders.jsonl", index);
        var conversations = JsonNode.Parse(File.ReadAllText(Path.Combine(ChatTemplateFixtures.PythonFolder, "conversations.json")))!.AsObject();
        var variables = conversations[record["conversation"]!.GetValue<string>()]!.AsObject();
        var template = ChatTemplate.Parse(ChatTemplateFixtures.Source(record["template"]!.GetValue<string>()));
        var input = ChatTemplateFixtures.Input(variables, record["bos_token"]!.GetValue<string>(), record["eos_token"]!.GetValue<string>(), ChatTemplateFixtures.Now(record));

        AssertSameOutcome(record, ChatTemplateFixtures.TryRender(template, input));
    }

    [Theory]
    [MemberData(nameof(SnippetRecords))]
    public void Render_of_a_construct_snippet_equals_python_jinja2(int index)
    {
        var record = Record("snippets.jsonl", index);
        var input = ChatTemplateFixtures.Input(record["vars"]!.AsObject(), null, null, ChatTemplateFixtures.Now(record));
        (string?, ChatTemplateException?) outcome;
        try
        {
            outcome = ChatTemplateFixtures.TryRender(ChatTemplate.Parse(record["source"]!.GetValue<string>()), input);
        }
        catch (ChatTemplateException e)
        {
            outcome = (null, e);
        }

        AssertSameOutcome(record, outcome);
    }

    private static void AssertSameOutcome(JsonObject expected, (string? Rendered, ChatTemplateException? Error) actual)
    {
        if (expected["rendered"] is JsonNode rendered)
        {
            Assert.Null(actual.Error?.Message);
            Assert.Equal(rendered.GetValue<string>(), actual.Rendered);
            return;
        }

        Assert.NotNull(actual.Error);
        bool raised = expected["raised"]!.GetValue<bool>();
        Assert.Equal(raised, actual.Error.RaisedByTemplate);
        if (raised) Assert.Equal(expected["error"]!.GetValue<string>(), actual.Error.Message);
    }
}
