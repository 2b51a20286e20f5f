using System.Diagnostics;
using System.Text.Json.Nodes;
using Pipeline.Inference.Chat;
using Xunit.Abstractions;

namespace Pipeline.Integration.ChatTemplates;

using ChatTemplate = Pipeline.Inference.Chat.ChatTemplate;

/// <summary>A parsed template is immutable: many threads render it at once and each gets its own answer, fast.</summary>
public sealed class ChatTemplateSharingTests(ITestOutputHelper output)
{
    private static ChatTemplateInput Conversation(int turns, int tag)
    {
        var messages = new JsonArray { new JsonObject { ["role"] = "system", ["content"] = "You are helpful." } };
        for (int i = 0; i < turns; i++)
        {
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = $"question {tag}.{i}" });
            messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = $"answer {tag}.{i}" });
        }

        messages.Add(new JsonObject { ["role"] = "user", ["content"] = $"last {tag}" });
        return new ChatTemplateInput { Messages = messages, AddGenerationPrompt = true, BosToken = "", EosToken = "<|im_end|>" };
    }

    [Fact]
    public void One_parsed_template_renders_concurrently_with_the_same_results_as_alone()
    {
        var template = ChatTemplate.Parse(ChatTemplateFixtures.Source("qwen3-tokenizer_config"));
        var expected = Enumerable.Range(0, 64).Select(i => template.Render(Conversation(i % 5, i))).ToArray();

        var actual = new string[64];
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => actual[i] = template.Render(Conversation(i % 5, i)));

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Render_after_parse_takes_well_under_a_millisecond_per_message()
    {
        var template = ChatTemplate.Parse(ChatTemplateFixtures.Source("meta-llama-Llama-3.1-8B-Instruct.jinja"));
        var input = Conversation(10, 1);
        int messages = (10 * 2) + 2;
        for (int i = 0; i < 50; i++) template.Render(input);

        const int Renders = 500;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Renders; i++) template.Render(input);
        double microsPerMessage = clock.Elapsed.TotalMicroseconds / Renders / messages;
        output.WriteLine($"Llama 3.1 template, {messages} messages: {microsPerMessage:F1} µs per message");

        // Loose bound: this machine is shared; the measured figure is in the output and the report.
        Assert.True(microsPerMessage < 1000, $"{microsPerMessage} µs per message");
    }
}
