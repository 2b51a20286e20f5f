using System.Text;
using Pipeline.Actors.Scheduling;
using Pipeline.Actors.Supervision;
using Pipeline.Inference.Text;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Actors;

/// <summary>
/// Turns each sequence's tokens into events for its caller (text deltas of whole characters,
/// never text that may yet begin a stop string, log-probabilities spelled as text and bytes) and
/// ends each request with its result or its error. Owns one <see cref="GeneratedText"/> per live
/// sequence; the wiring runs it as a Dataflow block that handles one message at a time, in order.
/// The caller's sink runs here, so a sink that throws is this actor's fault.
/// </summary>
internal sealed class DetokenizeActor(ITokenizer tokenizer, ISchedulingHook hook, LiveSequences live, FaultBoundary boundary)
{
    private readonly Dictionary<long, GeneratedText> _texts = [];

    /// <summary>Handles one emission. The actor's one fault boundary: what escapes is reported (this request is what it held).</summary>
    public async Task HandleAsync(Emission e)
    {
        ArgumentNullException.ThrowIfNull(e);
        try
        {
            await hook.BeforeHandOffAsync(HandOff.Delivered, e.Request.Id);
            Deliver(e);
            if (e.Ends) live.Ended(e.Request.Id);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !boundary.IsAborting)
        {
            boundary.Report(ActorName.Detokenize, ex, [e.Request.Id]);
        }
        catch (OperationCanceledException)
        {
            // The pipeline aborted: the wiring fails this request.
        }
    }

    private void Deliver(Emission e)
    {
        var sink = e.Request.Sink;
        if (e.Error is { } error)
        {
            _texts.Remove(e.Request.Id);
            sink.Failed(error);
            return;
        }
        if (!_texts.TryGetValue(e.Request.Id, out var text))
            _texts[e.Request.Id] = text = new GeneratedText(tokenizer);
        if (e.TokenId >= 0) text.Add(e.PreviousId, e.TokenId);
        string delta = e.Final is { } final ? text.ReleaseAll(final.StopAt) : text.Release(e.HeldBytes);
        if (e.TokenId >= 0) sink.Token(Event(e, delta));
        else if (delta.Length > 0) sink.Token(new TokenEvent(-1, delta));

        if (e.Final is { } done)
        {
            _texts.Remove(e.Request.Id);
            sink.Finished(done.Result(e.Reason, text.Shown));
        }
    }

    private TokenEvent Event(Emission e, string delta)
    {
        if (e.Logprobs is not { } logprobs) return new TokenEvent(e.TokenId, delta);
        return new TokenEvent(e.TokenId, delta, Spell(e.PreviousId, logprobs.TokenId, logprobs.Logprob),
            logprobs.Top.Select(t => Spell(e.PreviousId, t.TokenId, t.Logprob)).ToArray());
    }

    /// <summary>
    /// A token as its piece follows <paramref name="previousId"/> (after BOS llama2.c drops a
    /// leading space). A piece may be part of a UTF-8 character: its string is then lossy, which
    /// is why the bytes travel with it.
    /// </summary>
    private TokenLogprob Spell(int previousId, int id, float logprob)
    {
        var bytes = tokenizer.TokenBytes(previousId, id).ToArray();
        return new TokenLogprob(id, Encoding.UTF8.GetString(bytes), bytes, logprob);
    }
}
