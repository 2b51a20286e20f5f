using System.Threading.Channels;
using Pipeline.Inference.Sampling;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Actors;

/// <summary>
/// Turns a request's text into prompt ids and checks everything about the request that can be
/// checked before it costs model time. A bad request fails alone; the loop goes on.
/// </summary>
internal sealed class TokenizeActor(
    ChannelReader<Submission> inbox,
    ChannelWriter<Sequence> prefill,
    ChannelWriter<Emission> detokenize,
    Tokenizer tokenizer,
    int contextLength,
    ISchedulingHook hook)
{
    public async Task RunAsync()
    {
        try
        {
            await foreach (var submission in inbox.ReadAllAsync())
            {
                var sequence = submission.Sequence;
                if (sequence.IsCancelled)
                {
                    await hook.BeforeHandOffAsync(HandOff.Emitted, sequence.Id);
                    await detokenize.WriteAsync(new Emission(sequence.Id, sequence.Spec, sequence.Sink, -1, -1, null, sequence, FinishReason.Cancelled));
                    continue;
                }
                try
                {
                    sequence.PromptIds = Validate(sequence.Spec);
                    sequence.History.AddRange(sequence.PromptIds);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    sequence.Sink.Failed(e);
                    continue;
                }
                sequence.Sink.Tokenized(sequence.PromptIds);
                await hook.BeforeHandOffAsync(HandOff.Tokenized, sequence.Id);
                await prefill.WriteAsync(sequence);
            }
        }
        finally
        {
            prefill.TryComplete();
        }
    }

    private int[] Validate(RequestSpec spec)
    {
        if (spec.MaxTokens <= 0)
            throw new InvalidRequestException("max_tokens", $"max_tokens must be at least 1; got {spec.MaxTokens}.");
        spec.Sampling.Validate();
        if (spec.TopLogprobs is < 0 or > 20)
            throw new InvalidRequestException("top_logprobs", $"top_logprobs must be between 0 and 20; got {spec.TopLogprobs}.");
        int[] ids;
        if (spec.PromptIds is { } given)
        {
            ids = given.ToArray();
            if (ids.Length == 0) throw new InvalidRequestException("prompt", "prompt ids must not be empty (start with BOS, id 1).");
            foreach (var id in ids)
                if (id < 0 || id >= tokenizer.VocabSize)
                    throw new InvalidRequestException("prompt", $"prompt id {id} is outside the vocabulary (0..{tokenizer.VocabSize - 1}).");
        }
        else if (spec.Prompt is { } text)
        {
            ids = tokenizer.Encode(text, addSpecial: true).ToArray();
        }
        else
        {
            throw new InvalidRequestException("prompt", "the request has no prompt.");
        }
        if (ids.Length > contextLength)
            throw new InvalidRequestException("prompt", $"prompt is {ids.Length} tokens, longer than the model's context of {contextLength} tokens.");
        return ids;
    }
}
