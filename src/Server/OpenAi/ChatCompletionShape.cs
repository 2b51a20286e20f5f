using System.Text.Json.Nodes;

namespace Pipeline.Server.OpenAi;

/// <summary>The /v1/chat/completions spelling: an assistant <c>message</c> per choice, <c>delta</c> when streamed.</summary>
internal sealed class ChatCompletionShape : IResponseShape
{
    public string IdPrefix => "chatcmpl-";
    public string ObjectName => "chat.completion";
    public string ChunkObjectName => "chat.completion.chunk";

    public JsonObject Choice(int index, string text, string finishReason, IReadOnlyList<LogprobEntry>? logprobs) => new()
    {
        ["index"] = index,
        ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text, ["refusal"] = null },
        ["logprobs"] = logprobs is null ? null : Logprobs(logprobs),
        ["finish_reason"] = finishReason,
    };

    public JsonObject ChunkChoice(int index, string text, string? finishReason, IReadOnlyList<LogprobEntry>? logprobs) => new()
    {
        ["index"] = index,
        ["delta"] = finishReason is null ? new JsonObject { ["content"] = text } : new JsonObject(),
        ["logprobs"] = logprobs is null ? null : Logprobs(logprobs),
        ["finish_reason"] = finishReason,
    };

    public JsonObject? OpeningChunkChoice(int index) => new()
    {
        ["index"] = index,
        ["delta"] = new JsonObject { ["role"] = "assistant", ["content"] = "" },
        ["logprobs"] = null,
        ["finish_reason"] = null,
    };

    private static JsonObject Logprobs(IReadOnlyList<LogprobEntry> entries) => new()
    {
        ["content"] = new JsonArray(entries.Select(e => (JsonNode)new JsonObject
        {
            ["token"] = e.Token,
            ["logprob"] = e.Logprob,
            ["bytes"] = Bytes(e.Bytes),
            ["top_logprobs"] = new JsonArray(e.Top.Select(t => (JsonNode)new JsonObject
            {
                ["token"] = t.Token,
                ["logprob"] = t.Logprob,
                ["bytes"] = Bytes(t.Bytes),
            }).ToArray()),
        }).ToArray()),
        ["refusal"] = null,
    };

    private static JsonArray Bytes(IReadOnlyList<byte> bytes) => new(bytes.Select(b => (JsonNode)(int)b).ToArray());
}
