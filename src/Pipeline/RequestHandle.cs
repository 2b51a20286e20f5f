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

    /// <summary>The prompt's ids once tokenized (before the first event), else null.</summary>
    public IReadOnlyList<int>? PromptIds => Volatile.Read(ref _promptIds);
    private IReadOnlyList<int>? _promptIds;

    public void Tokenized(IReadOnlyList<int> promptIds) => Volatile.Write(ref _promptIds, promptIds);

    public void Token(TokenOutput token)
    {
        var e = new TokenEvent(token.TokenId, token.Text, token.Logprob?.Logprob, token.Logprob?.Top);
        _tokens.Add(e);
        _events.Writer.TryWrite(e);
    }

    public void Finished(SequenceOutcome o)
    {
        cancellation.Dispose();
        _events.Writer.TryComplete();
        _result.TrySetResult(new GenerationResult
        {
            PromptIds = o.PromptIds,
            CompletionIds = o.CompletionIds,
            Text = o.Text,
            FinishReason = o.FinishReason,
            Seed = o.Seed,
            Timings = new GenerationTimings(o.Queued, o.TimeToFirstToken, o.Total),
            Logits = o.Logits,
            Tokens = _tokens,
        });
    }

    public void Failed(Exception exception)
    {
        cancellation.Dispose();
        _events.Writer.TryComplete(exception);
        _result.TrySetException(exception);
    }
}
