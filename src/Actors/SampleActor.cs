using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Pipeline.Actors.Scheduling;
using Pipeline.Actors.Supervision;
using Pipeline.Inference.Sampling;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Actors;

/// <summary>
/// Picks each sequence's next token from its logits with the sequence's own seed (a counter-based
/// draw, so the stream never depends on timing), and decides whether it ends: an end token, a stop
/// string, max_tokens, or a full context.
/// </summary>
/// <remarks>
/// The decode ⇄ sample cycle cannot deadlock: this actor answers every <see cref="StepDone"/> with
/// one <see cref="StepSampled"/>, in order; decode reads replies whenever it waits (to send a
/// message, for a lane's call, for a sequence to join) and runs a call on its own thread only when
/// no message is with this actor; and this actor never blocks on handing a new sequence to decode
/// while a step waits for it; it keeps that sequence and serves the step first.
/// </remarks>
internal sealed class SampleActor(
    ChannelReader<PrefillDone> prefilled,
    ChannelReader<StepDone> steps,
    ChannelWriter<StepSampled> replies,
    ChannelWriter<Sequence> joins,
    ChannelWriter<Emission> detokenize,
    ITokenizer tokenizer,
    ISchedulingHook hook,
    int contextLength,
    PipelineCounters counters,
    FaultBoundary boundary)
{
    // The sequences this actor holds: the step being sampled, or the one waiting to join.
    private IReadOnlyList<Sequence> _holding = [];

    /// <summary>Runs until prefill and decode have both finished, or the pipeline aborts. The actor's one fault boundary.</summary>
    public async Task RunAsync()
    {
        try
        {
            await LoopAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException || !boundary.IsAborting)
        {
            boundary.Report(ActorName.Sample, e, _holding.Select(s => s.Id));
        }
        catch (OperationCanceledException)
        {
            // The pipeline aborted: the wiring fails what this actor held.
        }
        finally
        {
            joins.TryComplete();
            replies.TryComplete();
        }
    }

    private async Task LoopAsync()
    {
        var abort = boundary.Abort;
        Sequence? waitingToJoin = null;
        bool prefillOpen = true;
        while (true)
        {
            if (steps.TryRead(out var step))
            {
                _holding = waitingToJoin is null ? step.Sequences : [.. step.Sequences, waitingToJoin];
                await SampleStepAsync(step, abort);
                _holding = waitingToJoin is null ? [] : [waitingToJoin];
                continue;
            }
            if (waitingToJoin is not null)
            {
                if (joins.TryWrite(waitingToJoin)) { waitingToJoin = null; _holding = []; continue; }
                var ready = await Task.WhenAny(steps.WaitToReadAsync(abort).AsTask(), joins.WaitToWriteAsync(abort).AsTask());
                // A closed channel here is no reason to look again (that would spin): decode has
                // stopped while a sequence waits to join it, which only an abort explains.
                if (!await ready)
                {
                    abort.ThrowIfCancellationRequested();
                    throw new InvalidOperationException("the decode actor stopped while a sequence waited to join it");
                }
                continue;
            }
            if (prefillOpen && prefilled.TryRead(out var done))
            {
                _holding = [done.Sequence];
                if (await SampleAsync(done.Sequence, done.Logits, abort))
                {
                    // Joining must not block (see remarks), so the hook, if any, acts before the offer.
                    await joins.AnnounceAsync(done.Sequence);
                    waitingToJoin = done.Sequence;
                }
                else _holding = [];
                continue;
            }
            if (prefillOpen && prefilled.Completion.IsCompleted)
            {
                prefillOpen = false;
                joins.TryComplete();
            }
            if (!prefillOpen)
            {
                if (!await steps.WaitToReadAsync(abort)) break;
                continue;
            }
            var stepping = steps.WaitToReadAsync(abort).AsTask();
            var woke = await Task.WhenAny(stepping, prefilled.WaitToReadAsync(abort).AsTask());
            if (woke == stepping && !await stepping)
            {
                abort.ThrowIfCancellationRequested();
                throw new InvalidOperationException("the decode actor stopped while prefill was still running");
            }
        }
    }

    private async Task SampleStepAsync(StepDone step, CancellationToken abort)
    {
        int vocab = tokenizer.VocabSize, count = step.Sequences.Count;
        var chosen = new int[count];
        var errors = new Exception?[count];
        // Each row's draw is a pure function of its own logits and state, so rows may be drawn in
        // parallel without changing any token; worth it only where a draw costs more than a hop.
        if (count > 1 && vocab >= ParallelDrawVocabulary)
        {
            try
            {
                Parallel.For(0, count, i => chosen[i] = TryChoose(step.Sequences[i], step.LogitsOf(i, vocab).Span, out errors[i]));
            }
            catch (AggregateException e)
            {
                // A draw threw outside its filter (a fault of this actor): report what it threw,
                // not Parallel.For's wrapper, so the fault names the real exception.
                ExceptionDispatchInfo.Throw(e.Flatten().InnerExceptions[0]);
            }
        }
        else
            for (int i = 0; i < count; i++) chosen[i] = TryChoose(step.Sequences[i], step.LogitsOf(i, vocab).Span, out errors[i]);
        var continuing = new List<Sequence>(count);
        for (int i = 0; i < count; i++)
            if (await ApplyAsync(step.Sequences[i], step.LogitsOf(i, vocab), chosen[i], errors[i], abort))
                continuing.Add(step.Sequences[i]);
        await replies.WriteAsync(new StepSampled(continuing), abort);
    }

    private const int ParallelDrawVocabulary = 4096;

    /// <summary>The next token of <paramref name="s"/>: draw number (tokens so far) of its own seed; -1 when cancelled.</summary>
    private int Choose(Sequence s, ReadOnlySpan<float> logits)
    {
        if (s.IsCancelled) return -1;
        hook.BeforeWork(HandOff.Sampled, [s.Id]);
        return Sampler.Sample(logits, s.Options.Sampling, s.Request.Seed, s.Completion.Count, s.History);
    }

    /// <summary>As <see cref="Choose"/>, but a sampler that throws (non-finite logits, say) fails only its own sequence.</summary>
    private int TryChoose(Sequence s, ReadOnlySpan<float> logits, out Exception? error)
    {
        error = null;
        try { return Choose(s, logits); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            error = new InvalidOperationException($"sampling failed: {e.Message}", e);
            return -1;
        }
    }

    private Task<bool> SampleAsync(Sequence s, ReadOnlyMemory<float> logits, CancellationToken abort)
    {
        int token = TryChoose(s, logits.Span, out var error);
        return ApplyAsync(s, logits, token, error, abort);
    }

    /// <summary>Records the chosen token and decides whether the sequence goes on to another decode step.</summary>
    private async Task<bool> ApplyAsync(Sequence s, ReadOnlyMemory<float> logitsMemory, int token, Exception? error, CancellationToken abort)
    {
        if (error is not null)
        {
            s.ReleaseCache();
            await detokenize.WriteAsync(Emission.Failure(s.Request, error), abort);
            return false;
        }
        if (token < 0 || s.IsCancelled)
        {
            await EndAsync(s, FinishReason.Cancelled, abort);
            return false;
        }
        var logits = logitsMemory.Span;
        s.LogitsSeen(logits);
        // Any of the tokenizer's end ids ends a generation; so does BOS, which llama2.c's
        // generate loop treats as the start of the next story. Unless the request ignores them.
        if (!s.Options.IgnoreEos && (token == tokenizer.BosId || IsEndId(token)))
        {
            await EndAsync(s, FinishReason.Stop, abort);
            return false;
        }
        var logprobs = s.Options.WantsLogprobs ? Logprobs.Of(logits, token, s.Options.TopLogprobs) : null;
        int previous = s.LastId;
        bool stopped = s.Accept(token, tokenizer.TokenBytes(previous, token));
        counters.TokenGenerated();
        FinishReason? end = stopped ? FinishReason.Stop
            : s.Completion.Count >= s.Options.MaxTokens ? FinishReason.Length
            : s.PromptIds.Length + s.Completion.Count > contextLength ? FinishReason.Length
            : null;
        if (end is not null) s.ReleaseCache();
        var emission = new Emission(s.Request) { PreviousId = previous, TokenId = token, Logprobs = logprobs, HeldBytes = s.HeldBytes };
        await detokenize.WriteAsync(end is { } reason ? emission with { Final = s, Reason = reason } : emission, abort);
        return end is null;
    }

    private bool IsEndId(int token)
    {
        foreach (int id in tokenizer.EndIds)
            if (id == token) return true;
        return false;
    }

    private async Task EndAsync(Sequence s, FinishReason reason, CancellationToken abort)
    {
        s.ReleaseCache();
        await detokenize.WriteAsync(Emission.End(s, reason), abort);
    }
}
