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
        // this actor waits for every reply before the next step writes it again.
        var logits = workspace.RowLogits.Get(count * model.Config.VocabSize);
        var sampling = new Sampling(batch);
        long started = Stopwatch.GetTimestamp();
        Exception? failure = null;
        try
        {
            hook.BeforeWork(HandOff.Stepped, batch.Select(s => s.Id).ToArray());
            // One part's worth of rows is one call: nothing to overlap, so no hop off this thread.
            if (model.DecodesInParts && count > model.Shapes.DecodeRows) await StepInPartsAsync(rows, workspace, logits, sampling, abort);
            else model.Step(rows, workspace, logits);
        }
        catch (Exception e) when (e is not OutOfMemoryException && !(e is OperationCanceledException && abort.IsCancellationRequested))
        {
            failure = e;
        }
        long called = Stopwatch.GetTimestamp();
        if (failure is null)
        {
            counters.StepRan(count, called - started);
            if (sampling.Sent == 0)
            {
                int[] all = [.. Enumerable.Range(0, count)];
                await SendAsync(new ReadyRows(all, logits, all), sampling, abort);
            }
        }
        else
        {
            // The model call failed for the rows it had not finished: they end with the error; rows
            // a finished part already handed to sample, and every other sequence, go on.
            foreach (var s in sampling.Unsent)
            {
                s.ReleaseCache();
                counters.SequenceEnded();
                await detokenize.WriteAsync(Emission.Failure(s.Request, failure), abort);
            }
        }
        while (sampling.Outstanding > 0) sampling.Answered(await replies.ReadAsync(abort));
        if (failure is null)
        {
            counters.StepSampled(Stopwatch.GetTimestamp() - called);
            counters.RowsSampledEarly(sampling.Sent - sampling.LastSent);
        }
        var ended = sampling.Ended;
        foreach (var _ in ended) counters.SequenceEnded();
        ended.UnionWith(sampling.Unsent);
        _batch.Leave(ended);
    }

    /// <summary>
    /// The model call on a resident pool, run off this actor's thread so that each part's rows go to
    /// sample as soon as their logits land, and are drawn while the next part runs.
    /// </summary>
    private async Task StepInPartsAsync(SequenceStep[] rows, StepWorkspace workspace, float[] logits, Sampling sampling, CancellationToken abort)
    {
        // At most one message per part, and a part has at least one row: never full.
        var ready = Channel.CreateBounded<ReadyRows>(new BoundedChannelOptions(Math.Max(1, rows.Length)) { SingleReader = true, SingleWriter = true });
        var call = Task.Run(() =>
        {
            try
            {
                model.Step(rows, workspace, logits, part =>
                {
                    if (!ready.Writer.TryWrite(part)) throw new InvalidOperationException("more parts reported than rows");
                });
            }
            finally
            {
                ready.Writer.TryComplete();
            }
        }, CancellationToken.None); // a model call runs to its end; an abort stops the reading below
        await foreach (var part in ready.Reader.ReadAllAsync(abort))
            await SendAsync(part, sampling, abort);
        await call;
    }

    /// <summary>
    /// Hands <paramref name="ready"/>'s rows of the step to sample, with their logits where they landed.
    /// While the channel is full, replies are read as they come: sample may be waiting to deliver one
    /// before it takes the next part.
    /// </summary>
    private async Task SendAsync(ReadyRows ready, Sampling sampling, CancellationToken abort)
    {
        var done = new StepDone(sampling.Send(ready.Rows), ready.Logits, ready.LogitRows);
        await steps.AnnounceAsync(done);
        while (!steps.TryWrite(done))
        {
            var room = steps.WaitToWriteAsync(abort).AsTask();
            var reply = replies.WaitToReadAsync(abort).AsTask();
            await Task.WhenAny(room, reply);
            while (replies.TryRead(out var answered)) sampling.Answered(answered);
            if (room.IsCompleted ? !await room : reply.IsCompleted && !await reply)
            {
                abort.ThrowIfCancellationRequested();
                throw new InvalidOperationException("the sample actor stopped while a step waited for it");
            }
        }
    }

    /// <summary>One step's rows on their way through sample: which were sent, how many replies are due, who goes on.</summary>
    private sealed class Sampling(IReadOnlyList<Sequence> batch)
    {
        private readonly bool[] _sent = new bool[batch.Count];
        private readonly HashSet<Sequence> _continuing = [];

        public int Sent { get; private set; }
        /// <summary>Rows of the latest message: every earlier one went while the call still ran.</summary>
        public int LastSent { get; private set; }
        public int Outstanding { get; private set; }

        public Sequence[] Send(int[] indices)
        {
            var sequences = new Sequence[indices.Length];
            for (int i = 0; i < indices.Length; i++)
            {
                _sent[indices[i]] = true;
                sequences[i] = batch[indices[i]];
            }
            Sent += indices.Length;
            LastSent = indices.Length;
            Outstanding++;
            return sequences;
        }

        public void Answered(StepSampled reply)
        {
            Outstanding--;
            _continuing.UnionWith(reply.Continuing);
        }

        public IEnumerable<Sequence> Unsent => batch.Where((_, i) => !_sent[i]);

        /// <summary>Sent sequences that sample did not send on: they ended.</summary>
        public HashSet<Sequence> Ended => batch.Where((s, i) => _sent[i] && !_continuing.Contains(s)).ToHashSet();
    }
}
