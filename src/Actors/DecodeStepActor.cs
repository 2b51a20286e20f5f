using System.Diagnostics;
using System.Threading.Channels;
using Pipeline.Actors.Scheduling;
using Pipeline.Actors.Supervision;
using Pipeline.Inference.Runtime;

namespace Pipeline.Actors;

/// <summary>
/// Owns the running batch (<see cref="DecodeBatch"/>: who joins, who leaves, which row each
/// keeps). Each step is one model call that feeds every active sequence its last token;
/// sequences that finished prefill join between steps and finished or cancelled ones leave at
/// once, their KV memory released before the next step.
/// </summary>
internal sealed class DecodeStepActor(
    ChannelReader<Sequence> joins,
    ChannelWriter<StepDone> steps,
    ChannelReader<StepSampled> replies,
    ChannelWriter<Emission> detokenize,
    DecoderModel model,
    int maxBatch,
    ISchedulingHook hook,
    PipelineCounters counters,
    FaultBoundary boundary)
{
    private readonly DecodeBatch _batch = new(maxBatch, hook);

    /// <summary>Runs until joins complete and the batch is empty, or the pipeline aborts. The actor's one fault boundary.</summary>
    public async Task RunAsync()
    {
        // The actor's own model-call buffers (and, decoding on a device, its resident pool), freed when it stops.
        using var workspace = new StepWorkspace();
        try
        {
            await LoopAsync(workspace);
        }
        catch (Exception e) when (e is not OperationCanceledException || !boundary.IsAborting)
        {
            boundary.Report(ActorName.Decode, e, _batch.Rows.Select(s => s.Id));
        }
        catch (OperationCanceledException)
        {
            // The pipeline aborted: the wiring fails what this actor held.
        }
        finally
        {
            steps.TryComplete();
        }
    }

    private async Task LoopAsync(StepWorkspace workspace)
    {
        var abort = boundary.Abort;
        bool joinsOpen = true;
        long lastStepEnd = 0;
        while (true)
        {
            while (_batch.HasRoom && joins.TryRead(out var joined))
            {
                counters.SequenceStarted();
                _batch.Join(joined);
            }
            foreach (var cancelled in _batch.RemoveCancelled())
            {
                cancelled.ReleaseCache();
                counters.SequenceEnded();
                await detokenize.WriteAsync(Emission.End(cancelled, FinishReason.Cancelled), abort);
            }
            if (_batch.Count == 0)
            {
                lastStepEnd = 0;
                if (!joinsOpen) break;
                if (!await joins.WaitToReadAsync(abort)) joinsOpen = false;
                continue;
            }
            if (lastStepEnd != 0) counters.DecodeGap(Stopwatch.GetElapsedTime(lastStepEnd));
            await StepAsync(workspace, abort);
            lastStepEnd = Stopwatch.GetTimestamp();
        }
    }

    private async Task StepAsync(StepWorkspace workspace, CancellationToken abort)
    {
        var batch = _batch.NextStep();
        int count = batch.Count;
        var rows = new SequenceStep[count];
        for (int i = 0; i < count; i++) rows[i] = new SequenceStep(batch[i].Cache!, new[] { batch[i].LastId });
        // The workspace's buffer, not a new one per step: sample reads it before it replies, and
        // this actor waits for the reply before the next step writes it again.
        var logits = workspace.RowLogits.Get(count * model.Config.VocabSize);
        long started = Stopwatch.GetTimestamp();
        try
        {
            hook.BeforeWork(HandOff.Stepped, batch.Select(s => s.Id).ToArray());
            model.Step(rows, workspace, logits);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The model call failed for this batch: its sequences end with the error; others go on.
            foreach (var s in batch)
            {
                s.ReleaseCache();
                counters.SequenceEnded();
                await detokenize.WriteAsync(Emission.Failure(s.Request, e), abort);
            }
            _batch.Leave(batch.ToHashSet());
            return;
        }
        long called = Stopwatch.GetTimestamp();
        counters.StepRan(count, called - started);
        await steps.WriteAsync(new StepDone(batch, logits), abort);
        var reply = await replies.ReadAsync(abort);
        counters.StepSampled(Stopwatch.GetTimestamp() - called);
        var ended = batch.Except(reply.Continuing).ToHashSet();
        foreach (var _ in ended) counters.SequenceEnded();
        _batch.Leave(ended);
    }
}
