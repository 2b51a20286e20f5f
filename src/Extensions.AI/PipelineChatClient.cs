using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Pipeline.Inference.Sampling;

namespace Pipeline.Extensions.AI;

/// <summary>
/// An <see cref="IChatClient"/> over an in-process <see cref="PipelineHost"/>. The chat becomes
/// one prompt through the model's chat template (<see cref="PipelineHost.CreateChatRequest"/>), as the HTTP server does.
/// Maps <see cref="ChatOptions"/> MaxOutputTokens, Temperature, TopP, TopK, Seed and
/// StopSequences; the seed used is reported in AdditionalProperties["seed"]. Does not own the
/// host: disposing the client leaves the host running.
/// </summary>
public sealed class PipelineChatClient(PipelineHost host) : IChatClient
{
    private readonly ChatClientMetadata _metadata = new("pipeline", null, host.ModelName);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = await host.CompleteAsync(ToRequest(messages, options), cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text))
        {
            ModelId = host.ModelName,
            ResponseId = NewResponseId(),
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = ToFinishReason(result.FinishReason),
            Usage = ToUsage(result),
            AdditionalProperties = new() { ["seed"] = result.Seed },
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var stream = await host.StartAsync(ToRequest(messages, options), cancellationToken);
        string responseId = NewResponseId();
        try
        {
            await foreach (var token in stream.ReadAllAsync(cancellationToken))
            {
                if (token.Text.Length == 0) continue;
                yield return new ChatResponseUpdate(ChatRole.Assistant, token.Text) { ResponseId = responseId, MessageId = responseId, ModelId = host.ModelName };
            }
            var result = await stream.Result;
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(ToUsage(result))])
            {
                ResponseId = responseId,
                MessageId = responseId,
                ModelId = host.ModelName,
                FinishReason = ToFinishReason(result.FinishReason),
                AdditionalProperties = new() { ["seed"] = result.Seed },
            };
        }
        finally
        {
            // A consumer that stops early (break, an exception, disposal) no longer wants the rest: free its sequence.
            if (!stream.Result.IsCompleted) stream.Cancel();
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType == typeof(PipelineHost) ? host
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose() { }

    private GenerationRequest ToRequest(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        // One model per host: a request for another model is a mistake, not something to ignore.
        if (options?.ModelId is { } model && model != host.ModelName)
            throw new ArgumentException($"this client serves '{host.ModelName}', not '{model}'", nameof(options));
        // The model's chat template renders the conversation (a plain newline join when it has none).
        var turns = new System.Text.Json.Nodes.JsonArray();
        foreach (var m in messages)
            turns.Add(new System.Text.Json.Nodes.JsonObject { ["role"] = m.Role.Value, ["content"] = m.Text });
        return host.CreateChatRequest(turns) with
        {
            MaxTokens = options?.MaxOutputTokens ?? GenerationRequest.DefaultMaxTokens,
            Sampling = new SamplingOptions
            {
                Temperature = options?.Temperature ?? SamplingOptions.Default.Temperature,
                TopP = options?.TopP ?? SamplingOptions.Default.TopP,
                TopK = options?.TopK ?? SamplingOptions.Default.TopK,
            },
            // ChatOptions.Seed is signed; the engine's seeds are unsigned. Keep the bits.
            Seed = options?.Seed is { } seed ? unchecked((ulong)seed) : null,
            Stop = options?.StopSequences?.ToArray() ?? [],
        };
    }

    private static ChatFinishReason? ToFinishReason(FinishReason reason) => reason switch
    {
        FinishReason.Stop => ChatFinishReason.Stop,
        FinishReason.Length => ChatFinishReason.Length,
        _ => null,
    };

    private static UsageDetails ToUsage(GenerationResult result) => new()
    {
        InputTokenCount = result.PromptIds.Count,
        OutputTokenCount = result.CompletionIds.Count,
        TotalTokenCount = result.PromptIds.Count + result.CompletionIds.Count,
    };

    private static string NewResponseId() => $"chatcmpl-{Guid.NewGuid():N}";
}
