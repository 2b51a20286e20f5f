using System.Threading.Channels;
using Pipeline.Actors.Admission;
using Pipeline.Actors.Supervision;
using Pipeline.Inference.Sampling;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Actors;

/// <summary>
/// Turns a request's text into prompt ids, checks everything about the request that can be
/// checked before it costs model time, and admits it by KV memory: it reserves the request's
/// prompt + max_tokens positions (capped at the context) from the host's <see cref="KvBudget"/>,
/// waiting in line while the budget is short. Stateless between messages, so the wiring runs it
/// as a Dataflow block with a bounded degree of parallelism: one long prompt does not hold up the
/// rest. A bad request fails alone (through detokenize, the one route by which requests end).
/// </summary>
internal sealed class TokenizeActor(
    ChannelWriter<Sequence> prefill,
    ChannelWriter<Emission> detokenize,
    ITokenizer tokenizer,
    PromptLengthBound promptBound,
    int contextLength,
    KvBudget budget,
    long kvBytesPerPosition,
    PipelineCounters counters,
    FaultBoundary boundary)
{
    /// <summary>
    /// Handles one admitted request: to prefill with its prompt ids, or to detokenize ending it.
    /// The actor's one fault boundary: what escapes is reported (this request is what it held),
    /// never thrown into the Dataflow block.
    /// </summary>
    public async Task TokenizeAsync(Sequence sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        try
        {
            await HandleAsync(sequence, boundary.Abort);
        }
        catch (Exception e) when (e is not OperationCanceledException || !boundary.IsAborting)
        {
            boundary.Report(ActorName.Tokenize, e, [sequence.Id]);
        }
        catch (OperationCanceledException)
        {
            // The pipeline aborted: the wiring fails this request.
        }
    }

    private async Task HandleAsync(Sequence sequence, CancellationToken abort)
    {
        if (sequence.IsCancelled)
        {
            await detokenize.WriteAsync(Emission.End(sequence, FinishReason.Cancelled), abort);
            return;
        }
        int[] ids;
        int positions;
        try
        {
            ids = Validate(sequence.Options);
            positions = ReservedPositions(sequence.Options, ids.Length);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            await detokenize.WriteAsync(Emission.Failure(sequence.Request, e), abort);
            return;
        }
        sequence.Tokenized(ids);
        sequence.Request.Sink.Tokenized(sequence.PromptIds);
        if (await ReserveAsync(sequence, positions, abort) is not { } reservation)
        {
            await detokenize.WriteAsync(Emission.End(sequence, FinishReason.Cancelled), abort);
            return;
        }
        sequence.Reserved(reservation, positions);
        await prefill.WriteAsync(sequence, abort);
    }

    /// <summary>
    /// Waits, in line, until the budget has room for <paramref name="positions"/> positions; null
    /// when the request is cancelled while it waits (it has reserved nothing then). An abort throws.
    /// </summary>
    private async Task<KvReservation?> ReserveAsync(Sequence sequence, int positions, CancellationToken abort)
    {
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(sequence.Cancellation, abort);
        try
        {
            return await budget.ReserveAsync(positions * kvBytesPerPosition, waiting.Token);
        }
        catch (OperationCanceledException) when (!abort.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>
    /// The positions a request's KV cache may need: its prompt and max_tokens (the last token is
    /// never fed back, so this has one to spare), never more than the context, where generation
    /// stops. Throws when even that is more than the whole budget: waiting would never end.
    /// </summary>
    private int ReservedPositions(GenerationRequest request, int promptLength)
    {
        int positions = (int)Math.Min((long)promptLength + request.MaxTokens, contextLength);
        long bytes = positions * kvBytesPerPosition;
        if (bytes <= budget.Bytes) return positions;
        long budgetPositions = budget.Bytes / kvBytesPerPosition;
        string advice = budgetPositions > promptLength
            ? $"lower max_tokens to at most {budgetPositions - promptLength}"
            : "the prompt alone does not fit it";
        throw new InvalidRequestException("max_tokens",
            $"the prompt is {promptLength} tokens and max_tokens is {request.MaxTokens}: their {positions} positions of KV cache ({bytes} bytes) exceed the host's whole KV budget of {budget.Bytes} bytes ({budgetPositions} positions); {advice}.");
    }

    private int[] Validate(GenerationRequest request)
    {
        if (request.MaxTokens <= 0)
            throw new InvalidRequestException("max_tokens", $"max_tokens must be at least 1; got {request.MaxTokens}.");
        ArgumentNullException.ThrowIfNull(request.Sampling, "sampling");
        request.Sampling.Validate();
        if (request.TopLogprobs is < 0 or > GenerationRequest.MaxTopLogprobs)
            throw new InvalidRequestException("top_logprobs", $"top_logprobs must be between 0 and {GenerationRequest.MaxTopLogprobs}; got {request.TopLogprobs}.");
        int[] ids;
        if (request.PromptIds is { } given)
        {
            ids = given.ToArray();
            if (ids.Length == 0) throw new InvalidRequestException("prompt", "prompt ids must not be empty.");
            foreach (var id in ids)
                if (id < 0 || id >= tokenizer.VocabSize)
                    throw new InvalidRequestException("prompt", $"prompt id {id} is outside the vocabulary (0..{tokenizer.VocabSize - 1}).");
        }
        else if (request.Prompt is { } text)
        {
            // A cheap bound first: a text too long for any tokenization to fit is refused unread.
            if (promptBound.CannotFit(text, contextLength, out long bytes))
                throw new InvalidRequestException("prompt",
                    $"prompt is at least {bytes} bytes of text, longer than the model's context of {contextLength} tokens can hold (a token stands for at most {promptBound.MaxBytesPerToken} bytes of text, so at most {promptBound.MaxPromptBytes(contextLength)} bytes can fit); refused before tokenizing.");
            counters.PromptTokenized();
            ids = tokenizer.Encode(text, request.AddSpecialTokens).ToArray();
        }
        else
        {
            throw new InvalidRequestException("prompt", "the request has no prompt.");
        }
        if (ids.Length > contextLength)
            throw new InvalidRequestException("prompt", $"prompt is {ids.Length} tokens, longer than the model's context of {contextLength} tokens.");
        if (request.MaxTokensMustFit && (long)ids.Length + request.MaxTokens > contextLength)
            throw new InvalidRequestException("max_tokens",
                $"the prompt is {ids.Length} tokens and max_tokens is {request.MaxTokens}: {(long)ids.Length + request.MaxTokens} tokens exceed the model's context of {contextLength} tokens.");
        return ids;
    }
}
