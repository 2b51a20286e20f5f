using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Inference.Chat;

/// <summary>
/// One line of <c>pipeline chat-template -</c>: reads <c>{"messages": [...], "add_generation_prompt": true,
/// "bos_token": ..., "eos_token": ..., ...}</c> and answers <c>{"rendered": "..."}</c>, or
/// <c>{"error": "..."}</c> when the line is malformed or the template raises or fails.
/// </summary>
internal static class ChatTemplateJsonLine
{
    // Rendered prompts are full of '<' and '>' ("<|im_start|>"); keep them readable, not \u003C.
    private static readonly JsonSerializerOptions Output = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Render(ChatTemplate template, string line, string? defaultBosToken, string? defaultEosToken, DateTimeOffset? now = null)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(line);
        var result = new JsonObject();
        try
        {
            var request = JsonNode.Parse(line) as JsonObject ?? throw new ChatTemplateException("each input line must be a JSON object");
            var input = ChatTemplateInput.FromJson(request, defaultBosToken, defaultEosToken);
            result["rendered"] = template.Render(now is null ? input : WithNow(input, now.Value));
        }
        catch (ChatTemplateException e)
        {
            result["error"] = e.Message;
        }
        catch (JsonException e)
        {
            result["error"] = $"invalid JSON: {e.Message}";
        }
        catch (InvalidOperationException e)
        {
            // JsonNode.GetValue on a value of the wrong kind ("bos_token": 5).
            result["error"] = $"invalid request: {e.Message}";
        }

        return result.ToJsonString(Output);
    }

    private static ChatTemplateInput WithNow(ChatTemplateInput input, DateTimeOffset now) => new()
    {
        Messages = input.Messages,
        AddGenerationPrompt = input.AddGenerationPrompt,
        BosToken = input.BosToken,
        EosToken = input.EosToken,
        Variables = input.Variables,
        Now = now,
    };
}
