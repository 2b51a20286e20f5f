using System.Threading.Channels;
using Pipeline.Actors.Scheduling;
using Pipeline.Inference.Runtime;

namespace Pipeline.Actors;

/// <summary>
/// Runs prompts through the model in chunks, creating each sequence's KV cache. A thin loop
/// around <see cref="PrefillScheduler"/>, which decides which prompts share a call and where each
/// is cut; this actor owns the model calls and the cache of every prompt it holds.
/// </summary>
internal sealed class PrefillActor(
    ChannelReader<Sequence> inbox,
    ChannelWriter<PrefillDone> prefilled,
    ChannelWriter<Emission> detokenize,
    DecoderModel model,
    KvMemoryAccount account,
    int maxPrefillBatch,
    ISchedulingHook hook)
{
    private readonly PrefillScheduler _scheduler = new(maxPrefillBatch, model.AttentionBlock, hook);
    private readonly StepWorkspace _workspace = new();

    public async Task RunAsync()
    {
        try
        {
            while (true)
            {
                while (_scheduler.HasRoom && inbox.TryRead(out var next))
                {
                    next.StartPrefill(new KvCache(model.Config, account, initialCapacity: Math.Min(model.Config.SeqLen, next.PromptIds.Length + 16)));
                    _scheduler.Admit(next);
                }
                foreach (var cancelled in _scheduler.RemoveCancelled())
                {
                    cancelled.ReleaseCache();
                    await detokenize.WriteAsync(Emission.End(cancelled, FinishReason.Cancelled));
                }
                if (_scheduler.InProgress.Count == 0)
                {
                    if (!await inbox.WaitToReadAsync()) break;
                    continue;
                }
                await RunCallAsync(_scheduler.NextCall());
            }
        }
        finally
        {
            prefilled.TryComplete();
        }
    }

    private async Task RunCallAsync(PrefillChunk[] chunks)
    {
        var rows = new SequenceStep[chunks.Length];
        for (int i = 0; i < chunks.Length; i++)
            rows[i] = new SequenceStep(chunks[i].Sequence.Cache!, chunks[i].Sequence.PromptIds.AsMemory(chunks[i].Start, chunks[i].Length));
        int vocab = model.Config.VocabSize;
        var logits = new float[chunks.Length * vocab];
        try
        {
            model.Step(rows, _workspace, logits);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The model call failed for these prompts: they end with the error; others go on.
            foreach (var chunk in chunks)
            {
                chunk.Sequence.ReleaseCache();
                await detokenize.WriteAsync(Emission.Failure(chunk.Sequence.Request, e));
            }
            return;
        }
        var finished = _scheduler.Advance(chunks);
        for (int i = 0; i < chunks.Length; i++)
        {
            var s = chunks[i].Sequence;
            if (finished.Contains(s))
                await prefilled.WriteAsync(new PrefillDone(s, logits.AsSpan(i * vocab, vocab).ToArray()));
        }
    }
}
