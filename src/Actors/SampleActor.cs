using System.Diagnostics;
using System.Threading.Channels;
using Pipeline.Inference.Sampling;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Actors;

/// <summary>
/// Picks each sequence's next token from its logits with the sequence's own seed (a counter-based
/// draw, so the stream never depends on timing), and decides whether it ends: an end token, a stop
/// string, max_tokens, or a full context.
/// </summary>
/// <remarks>
/// The decode ⇄ sample cycle cannot deadlock: decode sends one <see cref="StepDone"/> and waits
/// for its one <see cref="StepSampled"/> reply, so each of those channels holds at most one
/// message; and this actor never blocks on handing a new sequence to decode while a step waits
/// for it; it keeps that sequence and serves the step first.
/// </remarks>
internal sealed class SampleActor(
    ChannelReader<PrefillDone> prefilled,
    ChannelReader<StepDone> steps,
    ChannelWriter<StepSampled> replies,
    ChannelWriter<Sequence> joins,
    ChannelWriter<Emission> detokenize,
    Tokenizer tokenizer,
    int contextLength,
    PipelineSettings settings,
    PipelineCounters counters)
{
    public async Task RunAsync()
    {
        Sequence? waitingToJoin = null;
        bool prefillOpen = true;
        try
        {
            while (true)
            {
                if (steps.TryRead(out var step))
                {
                    await SampleStepAsync(step);
                    continue;
                }
                if (waitingToJoin is not null)
                {
                    if (joins.TryWrite(waitingToJoin)) { waitingToJoin = null; continue; }
                    await Task.WhenAny(steps.WaitToReadAsync().AsTask(), joins.WaitToWriteAsync().AsTask());
                    continue;
                }
                if (prefillOpen && prefilled.TryRead(out var done))
                {
                    if (await SampleAsync(done.Sequence, done.Logits))
                    {
                        await settings.Hook.BeforeHandOffAsync(HandOff.Joined, done.Sequence.Id);
                        waitingToJoin = done.Sequence;
                    }
                    continue;
                }
                if (prefillOpen && prefilled.Completion.IsCompleted)
                {
                    prefillOpen = false;
                    joins.TryComplete();
                }
                if (!prefillOpen)
                {
                    if (!await steps.WaitToReadAsync()) break;
                    continue;
                }
                await Task.WhenAny(steps.WaitToReadAsync().AsTask(), prefilled.WaitToReadAsync().AsTask());
            }
        }
        finally
        {
            joins.TryComplete();
            replies.TryComplete();
        }
    }

    private async Task SampleStepAsync(StepDone step)
    {
        int vocab = tokenizer.VocabSize, count = step.Sequences.Count;
        var chosen = new int[count];
        var errors = new Exception?[count];
        // Each row's draw is a pure function of its own logits and state, so rows may be drawn in
        // parallel without changing any token; worth it only where a draw costs more than a hop.
        if (count > 1 && vocab >= ParallelDrawVocabulary)
            Parallel.For(0, count, i => chosen[i] = TryChoose(step.Sequences[i], step.Logits.AsSpan(i * vocab, vocab), out errors[i]));
        else
            for (int i = 0; i < count; i++) chosen[i] = TryChoose(step.Sequences[i], step.Logits.AsSpan(i * vocab, vocab), out errors[i]);
        var continuing = new List<Sequence>(count);
        for (int i = 0; i < count; i++)
            if (await ApplyAsync(step.Sequences[i], step.Logits.AsMemory(i * vocab, vocab), chosen[i], errors[i]))
                continuing.Add(step.Sequences[i]);
        foreach (var s in continuing) await settings.Hook.BeforeHandOffAsync(HandOff.Sampled, s.Id);
        await replies.WriteAsync(new StepSampled(continuing));
    }

    private const int ParallelDrawVocabulary = 4096;

    /// <summary>The next token of <paramref name="s"/>: draw number (tokens so far) of its own seed; -1 when cancelled.</summary>
    private static int Choose(Sequence s, ReadOnlySpan<float> logits) =>
        s.IsCancelled ? -1 : Sampler.Sample(logits, s.Spec.Sampling, s.Spec.Seed, s.Completion.Count, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(s.History));

    /// <summary>As <see cref="Choose"/>, but a sampler that throws (non-finite logits, say) fails only its own sequence.</summary>
    private static int TryChoose(Sequence s, ReadOnlySpan<float> logits, out Exception? error)
    {
        error = null;
        try { return Choose(s, logits); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            error = new InvalidOperationException($"sampling failed: {e.Message}", e);
            return -1;
        }
    }

    private Task<bool> SampleAsync(Sequence s, ReadOnlyMemory<float> logits)
    {
        int token = TryChoose(s, logits.Span, out var error);
        return ApplyAsync(s, logits, token, error);
    }

    /// <summary>Records the chosen token and decides whether the sequence goes on to another decode step.</summary>
    private async Task<bool> ApplyAsync(Sequence s, ReadOnlyMemory<float> logitsMemory, int token, Exception? error)
    {
        if (error is not null)
        {
            s.ReleaseCache();
            await detokenize.WriteAsync(Emission.Failure(s, error));
            return false;
        }
        if (token < 0 || s.IsCancelled)
        {
            await EmitAsync(s, -1, -1, null, FinishReason.Cancelled);
            return false;
        }
        var logits = logitsMemory.Span;
        if (s.Spec.CaptureLogits) (s.Logits ??= []).Add(logits.ToArray());
        if (s.FirstTokenAt == 0) s.FirstTokenAt = Stopwatch.GetTimestamp();
        if (token == tokenizer.BosId || tokenizer.EndIds.Contains(token))
        {
            await EmitAsync(s, -1, -1, null, FinishReason.Stop);
            return false;
        }
        var logprob = s.Spec.Logprobs ? Logprobs.Of(logits, token, s.Spec.TopLogprobs) : null;
        int previous = s.LastId;
        s.Completion.Add(token);
        s.History.Add(token);
        counters.TokenGenerated();
        s.StopAt = s.Stop.Append(tokenizer.TokenBytes(previous, token));
        FinishReason? end = s.StopAt is not null ? FinishReason.Stop
            : s.Completion.Count >= s.Spec.MaxTokens ? FinishReason.Length
            : s.PromptIds.Length + s.Completion.Count > contextLength ? FinishReason.Length
            : null;
        await EmitAsync(s, previous, token, logprob, end);
        return end is null;
    }

    private async Task EmitAsync(Sequence s, int previous, int token, TokenLogprob? logprob, FinishReason? end)
    {
        if (end is not null) s.ReleaseCache();
        await settings.Hook.BeforeHandOffAsync(HandOff.Emitted, s.Id);
        await detokenize.WriteAsync(new Emission(s.Id, s.Spec, s.Sink, previous, token, logprob, end is null ? null : s, end ?? FinishReason.Stop));
    }
}
