using FsCheck;
using FsCheck.Xunit;
using Pipeline.Actors;
using Pipeline.Actors.Scheduling;
using Pipeline.Properties.Scheduling;

namespace Pipeline.Properties;

/// <summary>
/// The scheduling rules on their own, with the model faked away (a "call" only advances the
/// prompts it was given): prefill chunking at block multiples and round robin, and the decode
/// batch's join, leave and swap. Fast, so each runs hundreds of cases.
/// </summary>
public sealed class SchedulingRuleProperties
{
    private const int Block = 64;

    [Property(MaxTest = 300)]
    public void Prefill_chunks_end_at_block_multiples_or_the_prompt_end_and_cover_every_prompt_once(NonEmptyArray<PositiveInt> lengths, PositiveInt maxPrefillBatch, ulong seed, bool split)
    {
        var hook = new SeededSchedule(seed, yieldPercent: 0, delayPercent: 0, splitPercent: split ? 50 : 0);
        var scheduler = new PrefillScheduler(1 + maxPrefillBatch.Get % 8, Block, hook);
        var waiting = new Queue<Sequence>(lengths.Get.Select((l, i) => Prompt(i, 1 + l.Get % 300)));
        var finished = new List<Sequence>();
        int calls = 0;
        while (waiting.Count > 0 || scheduler.InProgress.Count > 0)
        {
            while (scheduler.HasRoom && waiting.Count > 0) scheduler.Admit(waiting.Dequeue());
            var chunks = scheduler.NextCall();
            Assert.NotEmpty(chunks);
            foreach (var c in chunks)
            {
                int end = c.Start + c.Length;
                Assert.Equal(c.Sequence.Prefilled, c.Start);
                Assert.InRange(c.Length, 1, Block);
                Assert.True(end % Block == 0 || end == c.Sequence.PromptIds.Length, $"a chunk of {c.Length} from {c.Start} ends off the block grid inside a prompt of {c.Sequence.PromptIds.Length}");
            }
            finished.AddRange(scheduler.Advance(chunks));
            Assert.True(++calls <= 10_000, "prefill never finished");
        }
        Assert.Equal(lengths.Get.Length, finished.Distinct().Count());
        Assert.All(finished, s => Assert.Equal(s.PromptIds.Length, s.Prefilled));
    }

    [Property(MaxTest = 300)]
    public void Prefill_prompts_take_turns_so_each_is_served_within_as_many_calls_as_prompts_in_progress(NonEmptyArray<PositiveInt> lengths, PositiveInt maxPrefillBatch, PositiveInt perCall)
    {
        int capacity = 1 + maxPrefillBatch.Get % 8;
        // A model call that takes only the first few ready prompts, the least fair choice the rules must survive.
        var scheduler = new PrefillScheduler(capacity, Block, new FirstFew(1 + perCall.Get % capacity));
        var waiting = new Queue<Sequence>(lengths.Get.Select((l, i) => Prompt(i, 1 + l.Get % 400)));
        var lastServed = new Dictionary<Sequence, int>();
        int call = 0;
        while (waiting.Count > 0 || scheduler.InProgress.Count > 0)
        {
            while (scheduler.HasRoom && waiting.Count > 0)
            {
                var admitted = waiting.Dequeue();
                scheduler.Admit(admitted);
                lastServed[admitted] = call;
            }
            foreach (var s in scheduler.InProgress)
                Assert.True(call - lastServed[s] <= capacity, $"prompt {s.Id} waited {call - lastServed[s]} calls with {capacity} in progress");
            var chunks = scheduler.NextCall();
            call++;
            foreach (var c in chunks) lastServed[c.Sequence] = call;
            scheduler.Advance(chunks);
        }
    }

    [Property]
    public void Prefill_chunk_length_reaches_the_next_block_multiple_or_the_prompt_end(NonNegativeInt prefilled, PositiveInt rest)
    {
        int length = prefilled.Get + rest.Get;
        int chunk = PrefillScheduler.ChunkLength(prefilled.Get, length, Block);
        int end = prefilled.Get + chunk;
        Assert.InRange(chunk, 1, Block);
        Assert.True(end == length || (end % Block == 0 && end < length));
    }

    [Property(MaxTest = 500)]
    public void Decode_batch_joins_up_to_its_limit_and_a_leaving_sequence_moves_only_tail_rows(NonEmptyArray<bool> joinOrLeave, PositiveInt maxBatch, ulong seed)
    {
        int limit = 1 + maxBatch.Get % 16;
        var batch = new DecodeBatch(limit, NoSchedulingHook.Instance);
        var random = new Random(unchecked((int)seed));
        long next = 0;
        foreach (bool join in joinOrLeave.Get)
        {
            if (join)
            {
                if (batch.HasRoom) batch.Join(Prompt(next++, 1));
                Assert.InRange(batch.Count, 0, limit);
                continue;
            }
            var before = batch.Rows.ToList();
            var leaving = before.Where(_ => random.Next(3) == 0).ToHashSet();
            batch.Leave(leaving);
            var after = batch.Rows.ToList();
            Assert.Equal(before.Except(leaving).OrderBy(s => s.Id), after.OrderBy(s => s.Id));
            for (int row = 0; row < after.Count; row++)
            {
                int was = before.IndexOf(after[row]);
                Assert.True(was == row || was >= after.Count, $"sequence {after[row].Id} moved from row {was} to {row}, but only rows past the new end may move");
            }
            if (after.Count > 0) Assert.Equal(after, batch.NextStep());
        }
    }

    [Property(MaxTest = 300)]
    public void Decode_lanes_hold_at_most_a_call_each_keep_every_sequence_in_its_lane_and_give_idle_lanes_turns(NonEmptyArray<byte> operations, PositiveInt maxBatch, PositiveInt laneRows, ulong seed)
    {
        int limit = 1 + maxBatch.Get % 40, rows = 1 + laneRows.Get % 8;
        using var lanes = new DecodeLanes(limit, rows, NoSchedulingHook.Instance);
        var random = new Random(unchecked((int)seed));
        var laneOf = new Dictionary<Sequence, DecodeLane>();
        long next = 0;
        foreach (byte op in operations.Get)
        {
            switch (op % 4)
            {
                case 0 or 1 when lanes.HasRoom:
                    // A new lane only when every lane is full.
                    bool allFull = lanes.Lanes.All(l => !l.Batch.HasRoom);
                    int before = lanes.Lanes.Count;
                    var joined = Prompt(next++, 1);
                    lanes.Join(joined);
                    laneOf[joined] = lanes.Lanes.Single(l => l.Batch.Rows.Contains(joined));
                    Assert.Equal(allFull ? before + 1 : before, lanes.Lanes.Count);
                    break;
                case 2:
                    foreach (var lane in lanes.Lanes.Where(l => !l.Busy))
                        lane.Batch.Leave(lane.Batch.Rows.Where(_ => random.Next(3) == 0).ToHashSet());
                    break;
                default:
                    // Each idle lane with sequences gets its turn before any gets a second.
                    var idle = lanes.Lanes.Where(l => !l.Busy && l.Batch.Count > 0).ToHashSet();
                    var turns = new HashSet<DecodeLane>();
                    for (int i = 0; i < idle.Count; i++)
                    {
                        var taken = lanes.NextIdle();
                        Assert.NotNull(taken);
                        Assert.True(idle.Contains(taken) && turns.Add(taken), "a busy or empty lane, or one lane twice, in one round");
                        if (random.Next(2) == 0) taken.WithSample++;
                        else taken.Calling = true;
                    }
                    Assert.Null(lanes.NextIdle());
                    foreach (var lane in lanes.Lanes.Where(_ => random.Next(2) == 0))
                    {
                        lane.Calling = false;
                        lane.WithSample = 0;
                    }
                    break;
            }
            Assert.InRange(lanes.Count, 0, limit);
            Assert.All(lanes.Lanes, l => Assert.InRange(l.Batch.Count, 0, rows));
            foreach (var lane in lanes.Lanes)
                foreach (var s in lane.Batch.Rows)
                    Assert.Same(laneOf[s], lane);
        }
    }

    [Fact]
    public void Decode_batch_gives_cancelled_sequences_back_and_keeps_the_others()
    {
        using var cancel = new CancellationTokenSource();
        var batch = new DecodeBatch(8, NoSchedulingHook.Instance);
        var kept = Prompt(1, 1);
        var cancelled = Prompt(2, 1, cancel.Token);
        batch.Join(kept);
        batch.Join(cancelled);
        cancel.Cancel();

        Assert.Equal([cancelled], batch.RemoveCancelled());
        Assert.Equal([kept], batch.Rows);
    }

    private static Sequence Prompt(long id, int length, CancellationToken cancellation = default)
    {
        var sequence = new Sequence(new AdmittedRequest(id, new GenerationRequest { Prompt = "" }, 0, NoSink.Instance, 0), cancellation);
        sequence.Tokenized(Enumerable.Repeat(1, length).ToArray());
        return sequence;
    }

    /// <summary>Takes the first <c>count</c> ready prompts, in order.</summary>
    private sealed class FirstFew(int count) : ISchedulingHook
    {
        public ValueTask BeforeHandOffAsync(HandOff point, long requestId) => ValueTask.CompletedTask;
        public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready) => Enumerable.Range(0, Math.Min(count, ready.Count)).ToArray();
    }

    private sealed class NoSink : IRequestSink
    {
        public static readonly NoSink Instance = new();
        public void Tokenized(IReadOnlyList<int> promptIds) { }
        public void Token(TokenEvent token) { }
        public void Finished(GenerationResult result) { }
        public void Failed(Exception exception) { }
    }
}
