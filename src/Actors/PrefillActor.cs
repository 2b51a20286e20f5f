using System.Threading.Channels;
using Pipeline.Actors.Scheduling;
using Pipeline.Actors.Supervision;
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
    KvArrayShelf shelf,
    int maxPrefillBatch,
    ISchedulingHook hook,
    PipelineCounters counters,
    FaultBoundary boundary)
{
    private readonly PrefillScheduler _scheduler = new(maxPrefillBatch, model.AttentionBlock, hook);
    // The prompts of the model call in progress (they leave the scheduler as they finish).
    private PrefillChunk[] _call = [];

    /// <summary>Runs until the inbox completes, or the pipeline aborts. The actor's one fault boundary.</summary>
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
            boundary.Report(ActorName.Prefill, e, _scheduler.InProgress.Concat(_call.Select(c => c.Sequence)).Select(s => s.Id));
        }
        catch (OperationCanceledException)
        {
            // The pipeline aborted: the wiring fails what this actor held.
        }
        finally
        {
            prefilled.TryComplete();
        }
    }

    private async Task LoopAsync(StepWorkspace workspace)
    {
        var abort = boundary.Abort;
        while (true)
        {
            while (_scheduler.HasRoom && inbox.TryRead(out var next))
            {
                // The cache holds what the request reserved, so KV memory in use stays within the
                // budget. It is made at that size once rather than grown by doubling: each growth
                // took fresh memory and copied the old, and fresh memory is dear (first touches of
                // new pages cost ~11 us a page on this machine kind, docs/PERFORMANCE.md, "Session
                // 23"). Its arrays come from a finished cache of the same capacity when the shelf
                // has one (zeroed there, so resident); new ones are touched only as they are written.
                next.StartPrefill(new KvCache(model.Config, account, initialCapacity: next.ReservedPositions, maxCapacity: next.ReservedPositions, shelf));
                _scheduler.Admit(next);
            }
            foreach (var cancelled in _scheduler.RemoveCancelled())
            {
                cancelled.ReleaseCache();
                await detokenize.WriteAsync(Emission.End(cancelled, FinishReason.Cancelled), abort);
            }
            if (_scheduler.InProgress.Count == 0)
            {
                if (!await inbox.WaitToReadAsync(abort)) break;
                continue;
            }
            _call = _scheduler.NextCall();
            await RunCallAsync(workspace, _call, abort);
            _call = [];
        }
    }

    private async Task RunCallAsync(StepWorkspace workspace, PrefillChunk[] chunks, CancellationToken abort)
    {
        var rows = new SequenceStep[chunks.Length];
        for (int i = 0; i < chunks.Length; i++)
            rows[i] = new SequenceStep(chunks[i].Sequence.Cache!, chunks[i].Sequence.PromptIds.AsMemory(chunks[i].Start, chunks[i].Length));
        int vocab = model.Config.VocabSize;
        // Reused from call to call: each finished prompt's row is copied out below.
        var logits = workspace.RowLogits.Get(chunks.Length * vocab);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            hook.BeforeWork(HandOff.PrefillChunk, chunks.Select(c => c.Sequence.Id).ToArray());
            model.Step(rows, workspace, logits, StepKind.Prefill);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The model call failed for these prompts: they end with the error; others go on.
            foreach (var chunk in chunks)
            {
                chunk.Sequence.ReleaseCache();
                await detokenize.WriteAsync(Emission.Failure(chunk.Sequence.Request, e), abort);
            }
            return;
        }
        counters.PrefillCallRan(System.Diagnostics.Stopwatch.GetTimestamp() - started);
        var finished = _scheduler.Advance(chunks);
        for (int i = 0; i < chunks.Length; i++)
        {
            var s = chunks[i].Sequence;
            if (finished.Contains(s))
                await prefilled.WriteAsync(new PrefillDone(s, logits.AsSpan(i * vocab, vocab).ToArray()), abort);
        }
    }
}
