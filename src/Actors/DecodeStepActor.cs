using System.Diagnostics;
using System.Threading.Channels;
using Pipeline.Inference.Runtime;

namespace Pipeline.Actors;

/// <summary>
/// Owns the running batch. Each step is one model call that feeds every active sequence its last
/// token; sequences that finished prefill join between steps and finished or cancelled ones leave
/// at once, their KV memory released before the next step.
/// </summary>
internal sealed class DecodeStepActor(
    ChannelReader<Sequence> joins,
    ChannelWriter<StepDone> steps,
    ChannelReader<StepSampled> replies,
    ChannelWriter<Emission> detokenize,
    DecoderModel model,
    PipelineSettings settings,
    PipelineCounters counters)
{
    private readonly StepWorkspace _workspace = new();
    private readonly List<Sequence> _active = [];

    public async Task RunAsync()
    {
        bool joinsOpen = true;
        long lastStepEnd = 0;
        try
        {
            while (true)
            {
                while (_active.Count < settings.MaxBatch && joins.TryRead(out var joined))
                {
                    counters.SequenceStarted();
                    _active.Add(joined);
                }
                for (int i = _active.Count - 1; i >= 0; i--)
                    if (_active[i].IsCancelled)
                    {
                        var cancelled = _active[i];
                        RemoveAt(i);
                        cancelled.ReleaseCache();
                        counters.SequenceEnded();
                        await settings.Hook.BeforeHandOffAsync(HandOff.Emitted, cancelled.Id);
                        await detokenize.WriteAsync(Emission.End(cancelled, FinishReason.Cancelled));
                    }
                if (_active.Count == 0)
                {
                    lastStepEnd = 0;
                    if (!joinsOpen) break;
                    if (!await joins.WaitToReadAsync()) joinsOpen = false;
                    continue;
                }
                if (lastStepEnd != 0) counters.DecodeGap(Stopwatch.GetElapsedTime(lastStepEnd));
                await StepAsync();
                lastStepEnd = Stopwatch.GetTimestamp();
            }
        }
        finally
        {
            steps.TryComplete();
        }
    }

    private async Task StepAsync()
    {
        var (batch, _) = BatchChoice.Split(settings.Hook, HandOff.Stepped, _active);
        int count = batch.Count;
        var rows = new SequenceStep[count];
        for (int i = 0; i < count; i++) rows[i] = new SequenceStep(batch[i].Cache!, new[] { batch[i].LastId });
        var logits = new float[count * model.Config.VocabSize];
        try
        {
            model.Step(rows, _workspace, logits);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The model call failed for this batch: its sequences end with the error; others go on.
            foreach (var s in batch)
            {
                s.ReleaseCache();
                counters.SequenceEnded();
                await detokenize.WriteAsync(Emission.Failure(s.Request, e));
            }
            var failed = batch.ToHashSet();
            for (int i = _active.Count - 1; i >= 0; i--)
                if (failed.Contains(_active[i])) RemoveAt(i);
            return;
        }
        counters.StepRan(count);
        foreach (var s in batch) await settings.Hook.BeforeHandOffAsync(HandOff.Stepped, s.Id);
        await steps.WriteAsync(new StepDone(batch, logits));
        var reply = await replies.ReadAsync();
        var ended = batch.Except(reply.Continuing).ToHashSet();
        foreach (var _ in ended) counters.SequenceEnded();
        for (int i = _active.Count - 1; i >= 0; i--)
            if (ended.Contains(_active[i])) RemoveAt(i);
    }

    /// <summary>
    /// Removes a sequence by moving the last one into its place: every other sequence keeps its
    /// row, so the model's staged past needs copying for one row, not for all that follow.
    /// </summary>
    private void RemoveAt(int i)
    {
        _active[i] = _active[^1];
        _active.RemoveAt(_active.Count - 1);
    }
}
