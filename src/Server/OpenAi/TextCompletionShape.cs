using System.Text.Json.Nodes;

namespace Pipeline.Server.OpenAi;

/// <summary>The legacy /v1/completions spelling: <c>text</c> per choice, logprobs as parallel arrays.</summary>
internal sealed class TextCompletionShape : IResponseShape
{
    public string IdPrefix => "cmpl-";
    public string ObjectName => "text_completion";
    public string ChunkObjectName => "text_completion";

    public JsonObject Choice(int index, string text, string finishReason, IReadOnlyList<LogprobEntry>? logprobs)
        => ChunkChoice(index, text, finishReason, logprobs);

    public JsonObject ChunkChoice(int index, string text, string? finishReason, IReadOnlyList<LogprobEntry>? logprobs) => new()
    {
        ["index"] = index,
        ["text"] = text,
        ["logprobs"] = logprobs is null ? null : Logprobs(logprobs),
        ["finish_reason"] = finishReason,
    };

    public JsonObject? OpeningChunkChoice(int index) => null;

    // text_offset counts characters from the start of the completion.
    private static JsonObject Logprobs(IReadOnlyList<LogprobEntry> entries)
    {
        var offsets = new JsonArray();
        int offset = 0;
        foreach (var e in entries)
        {
            offsets.Add(offset);
            offset += e.Token.Length;
        }
        return new JsonObject
        {
            ["tokens"] = new JsonArray(entries.Select(e => (JsonNode)e.Token).ToArray()),
            ["token_logprobs"] = new JsonArray(entries.Select(e => (JsonNode)e.Logprob).ToArray()),
            ["top_logprobs"] = new JsonArray(entries.Select(e =>
            {
                var top = new JsonObject();
                foreach (var t in e.Top) top[t.Token] = t.Logprob;
                return (JsonNode)top;
            }).ToArray()),
            ["text_offset"] = offsets,
        };
    }
}
