using System.Diagnostics;
using System.Threading.Channels;
using Pipeline.Actors.Scheduling;
using Pipeline.Actors.Supervision;
using Pipeline.Inference.Runtime;

namespace Pipeline.Actors;

/// <summary>
/// Owns the running sequences (<see cref="DecodeLanes"/>: who joins, who leaves, which lane each
/// keeps). Each step is one model call that feeds every sequence of a lane its last token;
/// sequences that finished prefill join between calls and finished or cancelled ones leave, their
/// KV memory released before their lane's next call. On a resident pool a lane is one part of the
/// fixed call shape, and while sample draws one lane's tokens the next lane's call runs.
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
    // Messages with sample, in the order its replies come.
    private readonly Queue<WithSample> _withSample = new();
    // The call running off this actor's thread, if any (at most one: calls share the device).
    private LaneCall? _running;

    /// <summary>Runs until joins complete and no sequence is left, or the pipeline aborts. The actor's one fault boundary.</summary>
    public async Task RunAsync()
    {
        // The lanes' model-call buffers (and, decoding on a device, their resident pools) are freed when it stops.
        var lanes = new DecodeLanes(maxBatch, model.DecodesInParts ? model.Shapes.DecodeRows : maxBatch, hook);
        try
        {
            await LoopAsync(lanes);
        }
        catch (Exception e) when (e is not OperationCanceledException || !boundary.IsAborting)
        {
            boundary.Report(ActorName.Decode, e, lanes.Rows.Select(s => s.Id));
        }
        catch (OperationCanceledException)
        {
            // The pipeline aborted: the wiring fails what this actor held.
        }
        finally
        {
            steps.TryComplete();
            // A call runs to its end: its lane's pool and buffers go only after it.
            if (_running is { } running) await running.Task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            lanes.Dispose();
        }
    }

    private async Task LoopAsync(DecodeLanes lanes)
    {
        var abort = boundary.Abort;
        bool joinsOpen = true;
        // When the last call ended while sequences ran (0: none since the batch was empty).
        long lastCallEnd = 0;
        Task<bool>? joinWait = null, replyWait = null;
        while (true)
        {
            while (lanes.HasRoom && joins.TryRead(out var joined))
            {
                counters.SequenceStarted();
                lanes.Join(joined);
            }
            while (replies.TryRead(out var reply)) Answered(reply);
            if (_running is { Task.IsCompleted: true } finished)
            {
                _running = null;
                await FinishAsync(finished, abort);
                lastCallEnd = Stopwatch.GetTimestamp();
                continue;
            }
            if (_running is null && await NextLaneAsync(lanes, abort) is { } lane)
            {
                if (lastCallEnd != 0)
                {
                    // No call ran meanwhile: the device waited on sample (and on this actor).
                    long now = Stopwatch.GetTimestamp();
                    counters.DecodeGap(Stopwatch.GetElapsedTime(lastCallEnd, now));
                    counters.StepSampled(now - lastCallEnd);
                }
                var call = new LaneCall(lane, lane.Batch.NextStep());
                foreach (var sent in _withSample) sent.Overlapped = true;
                lane.Calling = true;
                if (_withSample.Count == 0 && lanes.Occupied == 1)
                {
                    // Nothing to overlap: the call stays on this thread.
                    Call(call);
                    await FinishAsync(call, abort);
                    lastCallEnd = Stopwatch.GetTimestamp();
                }
                else
                {
                    call.Task = Task.Run(() => Call(call), CancellationToken.None); // a model call runs to its end
                    _running = call;
                }
                continue;
            }
            if (_running is null && _withSample.Count == 0 && lanes.Count == 0)
            {
                lastCallEnd = 0;
                if (!joinsOpen) break;
                if (!await (joinWait ??= joins.WaitToReadAsync(abort).AsTask())) joinsOpen = false;
                joinWait = null;
                continue;
            }
            // A call runs or sample holds rows: wait for the first of the call, a reply, a sequence to join.
            var waits = new List<Task>(3);
            if (_running is not null) waits.Add(_running.Task);
            if (_withSample.Count > 0) waits.Add(replyWait ??= replies.WaitToReadAsync(abort).AsTask());
            if (joinsOpen && lanes.HasRoom) waits.Add(joinWait ??= joins.WaitToReadAsync(abort).AsTask());
            if (waits.Count == 0) throw new InvalidOperationException("decode has sequences but nothing to run or wait for");
            await Task.WhenAny(waits);
            if (replyWait is { IsCompleted: true })
            {
                if (!await replyWait) SampleStopped(abort);
                replyWait = null;
            }
            if (joinWait is { IsCompleted: true })
            {
                if (!await joinWait) joinsOpen = false;
                joinWait = null;
            }
        }
    }

    /// <summary>The next idle lane with sequences, its cancelled ones gone first; null when none.</summary>
    private async Task<DecodeLane?> NextLaneAsync(DecodeLanes lanes, CancellationToken abort)
    {
        while (lanes.NextIdle() is { } lane)
        {
            foreach (var cancelled in lane.Batch.RemoveCancelled())
            {
                cancelled.ReleaseCache();
                counters.SequenceEnded();
                await detokenize.WriteAsync(Emission.End(cancelled, FinishReason.Cancelled), abort);
            }
            if (lane.Batch.Count > 0) return lane;
        }
        return null;
    }

    /// <summary>The lane's model call, on whichever thread runs it: fills in what landed or why it failed.</summary>
    private void Call(LaneCall call)
    {
        var batch = call.Batch;
        var rows = new SequenceStep[batch.Count];
        for (int i = 0; i < rows.Length; i++) rows[i] = new SequenceStep(batch[i].Cache!, new[] { batch[i].LastId });
        // The lane's buffer, not a new one per call: sample reads it before it replies, and the lane
        // is not called again before every reply.
        var logits = call.Lane.Workspace.RowLogits.Get(rows.Length * model.Config.VocabSize);
        long started = Stopwatch.GetTimestamp();
        try
        {
            hook.BeforeWork(HandOff.Stepped, [.. batch.Select(s => s.Id)]);
            model.Step(rows, call.Lane.Workspace, logits, call.Landed.Add);
        }
        catch (Exception e) when (e is not OutOfMemoryException && !(e is OperationCanceledException && boundary.Abort.IsCancellationRequested))
        {
            call.Failure = e;
        }
        call.Ticks = Stopwatch.GetTimestamp() - started;
    }

    /// <summary>Hands a finished call's rows to sample; rows whose part failed end with the error.</summary>
    private async Task FinishAsync(LaneCall call, CancellationToken abort)
    {
        await call.Task; // rethrows only what ends the actor (an abort, out of memory)
        var lane = call.Lane;
        lane.Calling = false;
        var sent = new HashSet<Sequence>();
        foreach (var ready in call.Landed)
        {
            var sequences = ready.Rows.Select(i => call.Batch[i]).ToArray();
            sent.UnionWith(sequences);
            await SendAsync(new StepDone(sequences, ready.Logits, ready.LogitRows), lane, abort);
        }
        if (call.Failure is null)
        {
            counters.StepRan(call.Batch.Count, call.Ticks);
            return;
        }
        // The model call failed for the rows it had not finished: they end with the error; rows a
        // finished part already handed to sample, and every other sequence, go on.
        var failed = call.Batch.Where(s => !sent.Contains(s)).ToHashSet();
        foreach (var s in failed)
        {
            s.ReleaseCache();
            counters.SequenceEnded();
            await detokenize.WriteAsync(Emission.Failure(s.Request, call.Failure), abort);
        }
        lane.Batch.Leave(failed);
    }

    /// <summary>
    /// Hands <paramref name="done"/> to sample. While the channel is full, replies are read as they
    /// come: sample may be waiting to deliver one before it takes the next message.
    /// </summary>
    private async Task SendAsync(StepDone done, DecodeLane lane, CancellationToken abort)
    {
        await steps.AnnounceAsync(done);
        while (!steps.TryWrite(done))
        {
            var room = steps.WaitToWriteAsync(abort).AsTask();
            var reply = replies.WaitToReadAsync(abort).AsTask();
            await Task.WhenAny(room, reply);
            while (replies.TryRead(out var answered)) Answered(answered);
            if (room.IsCompleted ? !await room : reply.IsCompleted && !await reply) SampleStopped(abort);
        }
        _withSample.Enqueue(new WithSample(lane, done.Sequences));
        lane.WithSample++;
    }

    /// <summary>Sample's reply to the oldest message: who goes on; the others of that message ended.</summary>
    private void Answered(StepSampled reply)
    {
        if (!_withSample.TryDequeue(out var sent)) throw new InvalidOperationException("sample replied to a message decode did not send");
        var continuing = reply.Continuing.ToHashSet();
        var ended = sent.Sequences.Where(s => !continuing.Contains(s)).ToHashSet();
        foreach (var _ in ended) counters.SequenceEnded();
        sent.Lane.Batch.Leave(ended);
        sent.Lane.WithSample--;
        if (sent.Overlapped) counters.RowsSampledEarly(sent.Sequences.Count);
    }

    private static void SampleStopped(CancellationToken abort)
    {
        abort.ThrowIfCancellationRequested();
        throw new InvalidOperationException("the sample actor stopped while a step waited for it");
    }

    /// <summary>One call of a lane: its rows, and (once it ran) what landed, or why it failed.</summary>
    private sealed class LaneCall(DecodeLane lane, List<Sequence> batch)
    {
        public DecodeLane Lane { get; } = lane;
        public List<Sequence> Batch { get; } = batch;
        public List<ReadyRows> Landed { get; } = [];
        public Exception? Failure { get; set; }
        public long Ticks { get; set; }
        /// <summary>The call off the actor's thread (complete when it ran on it).</summary>
        public Task Task { get; set; } = Task.CompletedTask;
    }

    /// <summary>A message with sample: its lane, its sequences, and whether another call ran while it was drawn.</summary>
    private sealed class WithSample(DecodeLane lane, IReadOnlyList<Sequence> sequences)
    {
        public DecodeLane Lane { get; } = lane;
        public IReadOnlyList<Sequence> Sequences { get; } = sequences;
        public bool Overlapped { get; set; }
    }
}
