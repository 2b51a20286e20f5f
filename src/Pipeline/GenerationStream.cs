using System.Runtime.CompilerServices;

namespace Pipeline;

/// <summary>
/// One admitted generation seen from the caller: its tokens as they are sampled and, once they
/// end, the whole result (finish reason, prompt and completion ids, seed). Servers need both: the
/// tokens to stream, the result for usage and the finish reason of the last chunk.
/// </summary>
public sealed class GenerationStream
{
    private readonly RequestHandle _handle;

    internal GenerationStream(RequestHandle handle) => _handle = handle;

    /// <summary>The prompt's ids, BOS first, once it has been tokenized (always by the first token); else null.</summary>
    public IReadOnlyList<int>? PromptIds => _handle.PromptIds;

    /// <summary>
    /// Completes with the prompt's ids once it has been tokenized (before it waits for KV memory),
    /// or with null when the request ended before (it failed or was cancelled first). Lets a caller
    /// that continues one prompt several times tokenize it once and send the ids.
    /// </summary>
    public Task<IReadOnlyList<int>?> WhenTokenized => _handle.WhenTokenized;

    /// <summary>Completes with the result, or faults with the request's error (e.g. an invalid option).</summary>
    public Task<GenerationResult> Result => _handle.Result;

    /// <summary>
    /// Waits until the first token is ready or the request has ended; throws the request's error
    /// if it failed before producing anything. Lets a server choose its status code before it
    /// commits to a streaming response.
    /// </summary>
    public async ValueTask WaitForFirstAsync(CancellationToken cancellation = default)
        => await _handle.Events.WaitToReadAsync(cancellation);

    /// <summary>Cancels the generation (its caller stopped reading): the actors end it and free its KV cache.</summary>
    public void Cancel() => _handle.Cancel();

    /// <summary>The tokens, in order; the sequence ends when the request does and throws its error if it failed.</summary>
    public async IAsyncEnumerable<TokenEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellation = default)
    {
        await foreach (var e in _handle.Events.ReadAllAsync(cancellation))
            yield return e;
    }
}
