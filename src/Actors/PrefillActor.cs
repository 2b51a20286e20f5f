using System.Threading.Channels;
using Pipeline.Inference.Runtime;

namespace Pipeline.Actors;

/// <summary>
/// Runs prompts through the model in chunks, creating each sequence's KV cache. Chunks end on
/// multiples of the model's attention block counted from the start of the prompt, so where a
/// prompt is cut depends only on the prompt, never on load. The chunks of several prompts share
/// one model call, and prompts take turns so a long one never holds up a short one.
/// </summary>
internal sealed class PrefillActor(
    ChannelReader<Sequence> inbox,
    ChannelWriter<PrefillDone> prefilled,
    ChannelWriter<Emission> detokenize,
    DecoderModel model,
    KvMemoryAccount account,
    PipelineSettings settings)
{
    private readonly List<Sequence> _inProgress = [];
    private readonly StepWorkspace _workspace = new();

    public async Task RunAsync()
    {
        try
        {
            while (true)
            {
                while (_inProgress.Count < settings.MaxPrefillBatch && inbox.TryRead(out var next))
                {
                    next.StartPrefill(new KvCache(model.Config, account, initialCapacity: Math.Min(model.Config.SeqLen, next.PromptIds.Length + 16)));
                    _inProgress.Add(next);
                }
                for (int i = _inProgress.Count - 1; i >= 0; i--)
                    if (_inProgress[i].IsCancelled)
                    {
                        var cancelled = _inProgress[i];
                        _inProgress.RemoveAt(i);
                        await Retire(cancelled, FinishReason.Cancelled);
                    }
                if (_inProgress.Count == 0)
                {
                    if (!await inbox.WaitToReadAsync()) break;
                    continue;
                }
                await RunChunkAsync();
            }
        }
        finally
        {
            prefilled.TryComplete();
        }
    }

    private async Task RunChunkAsync()
    {
        var (batch, rest) = BatchChoice.Split(settings.Hook, HandOff.PrefillChunk, _inProgress);
        int count = batch.Count;
        _inProgress.Clear();
        _inProgress.AddRange(rest);
        int block = model.AttentionBlock;
        var rows = new SequenceStep[count];
        for (int i = 0; i < count; i++)
        {
            var s = batch[i];
            int length = Math.Min(block - s.Prefilled % block, s.PromptIds.Length - s.Prefilled);
            rows[i] = new SequenceStep(s.Cache!, s.PromptIds.AsMemory(s.Prefilled, length));
        }
        int vocab = model.Config.VocabSize;
        var logits = new float[count * vocab];
        try
        {
            model.Step(rows, _workspace, logits);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            foreach (var s in batch)
            {
                s.ReleaseCache();
                await detokenize.WriteAsync(Emission.Failure(s.Request, e));
            }
            return;
        }
        for (int i = 0; i < count; i++)
        {
            var s = batch[i];
            s.AdvancePrefill(rows[i].Tokens.Length);
            if (s.Prefilled < s.PromptIds.Length)
            {
                _inProgress.Add(s); // to the back: round robin
                continue;
            }
            await settings.Hook.BeforeHandOffAsync(HandOff.Prefilled, s.Id);
            await prefilled.WriteAsync(new PrefillDone(s, logits.AsSpan(i * vocab, vocab).ToArray()));
        }
    }

    private async Task Retire(Sequence s, FinishReason reason)
    {
        s.ReleaseCache();
        await settings.Hook.BeforeHandOffAsync(HandOff.Emitted, s.Id);
        await detokenize.WriteAsync(Emission.End(s, reason));
    }
}
