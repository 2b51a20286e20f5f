using System.Threading.Channels;
using Pipeline.Actors;

namespace Pipeline;

/// <summary>The caller's end of one request: its event stream and its final result.</summary>
internal sealed class RequestHandle(CancellationTokenSource cancellation) : IRequestSink
{
    // Unbounded, but never longer than max_tokens + 1 events: the actors never wait on a slow reader.
    private readonly Channel<TokenEvent> _events = Channel.CreateUnbounded<TokenEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource<GenerationResult> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<TokenEvent> _tokens = [];

    public ChannelReader<TokenEvent> Events => _events.Reader;
    public CancellationToken Cancellation => cancellation.Token;

    /// <summary>Cancels the request (its caller went away); the actors release its KV cache.</summary>
    public void Cancel()
    {
        try { cancellation.Cancel(); }
        catch (ObjectDisposedException) { } // already finished
    }
    public Task<GenerationResult> Result => _result.Task;

    /// <summary>The request never entered the pipeline.</summary>
    public void Abandon() => cancellation.Dispose();

    private readonly TaskCompletionSource<IReadOnlyList<int>?> _tokenized = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The prompt's ids once tokenized (before the first event), else null.</summary>
    public IReadOnlyList<int>? PromptIds => Volatile.Read(ref _promptIds);
    private IReadOnlyList<int>? _promptIds;

    /// <summary>Completes with the prompt's ids once tokenized, or with null when the request ended before.</summary>
    public Task<IReadOnlyList<int>?> WhenTokenized => _tokenized.Task;

    public void Tokenized(IReadOnlyList<int> promptIds)
    {
        Volatile.Write(ref _promptIds, promptIds);
        _tokenized.TrySetResult(promptIds);
    }

    public void Token(TokenEvent token)
    {
        _tokens.Add(token);
        _events.Writer.TryWrite(token);
    }

    public void Finished(GenerationResult result)
    {
        _tokenized.TrySetResult(null);
        cancellation.Dispose();
        _events.Writer.TryComplete();
        _result.TrySetResult(result with { Tokens = _tokens });
    }

    public void Failed(Exception exception)
    {
        _tokenized.TrySetResult(null);
        cancellation.Dispose();
        _events.Writer.TryComplete(exception);
        _result.TrySetException(exception);
    }
}
