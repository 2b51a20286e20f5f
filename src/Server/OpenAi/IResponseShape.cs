using System.Text.Json.Nodes;

namespace Pipeline.Server.OpenAi;

/// <summary>
/// What differs between /v1/completions and /v1/chat/completions: the object names and how a
/// choice, a streamed delta and log-probabilities are spelled. Everything else is shared.
/// </summary>
internal interface IResponseShape
{
    string IdPrefix { get; }
    string ObjectName { get; }
    string ChunkObjectName { get; }

    /// <summary>A whole choice of a non-streamed response.</summary>
    JsonObject Choice(int index, string text, string finishReason, IReadOnlyList<LogprobEntry>? logprobs);

    /// <summary>A choice of one streamed chunk: new text, or the final empty delta with its finish reason.</summary>
    JsonObject ChunkChoice(int index, string text, string? finishReason, IReadOnlyList<LogprobEntry>? logprobs);

    /// <summary>The choice of the chunk that opens a stream (chat announces the assistant role), or null.</summary>
    JsonObject? OpeningChunkChoice(int index);
}
