using Pipeline.Inference.Runtime;
using Pipeline.Testing;

namespace Pipeline.Integration;

/// <summary>
/// On the CPU runner's graph a decoding batch's staged past is where its new positions live: the
/// kernel writes them there, and each cache counts them as held by the workspace instead of taking
/// a second copy (it gives its own arrays back). These tests move rows around, let some sit out,
/// widen the stride and fail a call, and check every sequence still gets the bits it gets alone.
/// </summary>
public sealed class DecodeWorkspaceHeldPositionsTests
{
    private static LoadedModel Cpu() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1 });

    // One sequence: its cache, prefilled alone, and its twin decoded alone in a workspace of its own.
    private sealed class Twins(DecoderModel model, int seed, int capacity) : IDisposable
    {
        public KvCache Batched { get; } = Prefill(model, seed, capacity);
        public KvCache Alone { get; } = Prefill(model, seed, capacity);
        public StepWorkspace AloneWorkspace { get; } = new();
        public int Steps { get; set; }
        public int NextToken => 3 + (Steps * 7 + Seed * 13) % 500;
        private int Seed { get; } = seed;

        private static KvCache Prefill(DecoderModel model, int seed, int capacity)
        {
            var cache = new KvCache(model.Config, initialCapacity: capacity, maxCapacity: capacity);
            model.Step([new SequenceStep(cache, StepInputs.Tokens(seed, 5 + seed % 7))], new StepWorkspace(), new float[model.Config.VocabSize], StepKind.Prefill);
            return cache;
        }

        public void Dispose()
        {
            Batched.Dispose();
            Alone.Dispose();
            AloneWorkspace.Dispose();
        }
    }

    /// <summary>One decode step of <paramref name="order"/> together, checked row by row against each one's step alone.</summary>
    private static void StepTogether(DecoderModel model, StepWorkspace workspace, IReadOnlyList<Twins> order)
    {
        int vocab = model.Config.VocabSize;
        var logits = new float[order.Count * vocab];
        model.Step(order.Select(t => new SequenceStep(t.Batched, new[] { t.NextToken })).ToArray(), workspace, logits, StepKind.Decode);
        for (int i = 0; i < order.Count; i++)
        {
            var t = order[i];
            var alone = new float[vocab];
            model.Step([new SequenceStep(t.Alone, new[] { t.NextToken })], t.AloneWorkspace, alone, StepKind.Decode);
            Assert.True(Bits.Equal(alone, logits.AsSpan(i * vocab, vocab)), $"row {i} (step {t.Steps}): logits differ from its step alone");
            t.Steps++;
        }
    }

    private static void AssertSameCache(DecoderModel model, KvCache a, KvCache b)
    {
        Assert.Equal(a.Length, b.Length);
        for (int l = 0; l < model.Config.Layers; l++)
            for (int h = 0; h < model.Config.KvHeads; h++)
                Assert.True(Bits.Equal(a.Keys(l, h), b.Keys(l, h)) && Bits.Equal(a.Values(l, h), b.Values(l, h)), $"layer {l} head {h}: cache differs");
    }

    private static void AssertSameCachesAndDispose(DecoderModel model, IEnumerable<Twins> sequences)
    {
        foreach (var t in sequences)
        {
            AssertSameCache(model, t.Alone, t.Batched);
            t.Dispose();
        }
    }

    [Fact]
    public void A_decoding_batch_keeps_its_new_positions_only_in_the_staged_past_and_its_caches_give_their_arrays_back()
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        var seqs = Enumerable.Range(0, 3).Select(i => new Twins(model, i, 120)).ToArray();
        using var workspace = new StepWorkspace();

        for (int step = 0; step < 20; step++) StepTogether(model, workspace, seqs);

        foreach (var t in seqs)
        {
            Assert.True(t.Batched.HasHeldPositions);
            Assert.Equal(0, t.Batched.HostLength);
            Assert.Equal(0, t.Batched.ArrayBytes); // one copy of the positions, not two
            Assert.Equal(120, t.Batched.Capacity);
        }
        // A reader gets them back from the workspace, bit for bit; the next step goes on from there.
        foreach (var t in seqs) AssertSameCache(model, t.Alone, t.Batched);
        Assert.All(seqs, t => Assert.False(t.Batched.HasHeldPositions));
        StepTogether(model, workspace, seqs);
        Assert.All(seqs, t => Assert.Equal(0, t.Batched.ArrayBytes));
        AssertSameCachesAndDispose(model, seqs);
    }

    [Fact]
    public void Rows_that_swap_places_sit_out_a_step_or_leave_and_come_back_keep_their_pasts()
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        var s = Enumerable.Range(0, 5).Select(i => new Twins(model, i, 80)).ToArray();
        var (a, b, c, d, e) = (s[0], s[1], s[2], s[3], s[4]);
        using var workspace = new StepWorkspace();
        Twins[][] schedule =
        [
            [a, b, c], [a, b, c],
            [c, b],          // a sits out, c moves down into its row
            [b, c, a, d],    // b moves down, c up, a comes back, d joins
            [d, a, c, b],    // every row moves: two down, two up
            [e, d],          // e takes a row that held b's past
            [a, b, c, d, e], [b], [e, a, b, c, d], [a, b, c, d, e],
        ];
        for (int i = 0; i < schedule.Length; i++)
        {
            StepTogether(model, workspace, schedule[i]);
            // Rows that stay in place are never copied again: the second step copies nothing.
            if (i == 1) Assert.Equal(3, workspace.RowsCopied);
        }
        AssertSameCachesAndDispose(model, s);
    }

    [Fact]
    public void A_row_with_a_larger_reservation_widens_the_stride_and_the_held_pasts_move_with_it()
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        var narrow = Enumerable.Range(0, 2).Select(i => new Twins(model, i, 60)).ToArray();
        var wide = new Twins(model, 7, 200);
        using var workspace = new StepWorkspace();

        for (int step = 0; step < 4; step++) StepTogether(model, workspace, narrow);
        Assert.Equal(64, workspace.PastStride);
        for (int step = 0; step < 4; step++) StepTogether(model, workspace, [narrow[0], wide, narrow[1]]);
        Assert.Equal(208, workspace.PastStride);
        for (int step = 0; step < 4; step++) StepTogether(model, workspace, narrow);
        Assert.Equal(64, workspace.PastStride);

        AssertSameCachesAndDispose(model, [.. narrow, wide]);
    }

    [Fact]
    public void A_call_that_fails_gives_every_held_position_back_to_its_cache_and_the_batch_goes_on()
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        var seqs = Enumerable.Range(0, 2).Select(i => new Twins(model, i, 80)).ToArray();
        using var workspace = new StepWorkspace();
        for (int step = 0; step < 5; step++) StepTogether(model, workspace, seqs);
        Assert.All(seqs, t => Assert.True(t.Batched.HasHeldPositions));

        // A token past the vocabulary fails inside ONNX Runtime, after the rows were staged.
        int vocab = model.Config.VocabSize;
        var failing = seqs.Select(t => new SequenceStep(t.Batched, new[] { vocab + 5 })).ToArray();
        Assert.ThrowsAny<Exception>(() => model.Step(failing, workspace, new float[2 * vocab], StepKind.Decode));

        Assert.All(seqs, t => Assert.False(t.Batched.HasHeldPositions));
        Assert.All(seqs, t => Assert.Equal(t.Batched.Length, t.Batched.HostLength));
        foreach (var t in seqs) AssertSameCache(model, t.Alone, t.Batched);
        for (int step = 0; step < 3; step++) StepTogether(model, workspace, seqs);
        AssertSameCachesAndDispose(model, seqs);
    }

    [Fact]
    public void A_disposed_cache_frees_its_row_and_a_newcomer_takes_it()
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        var s = Enumerable.Range(0, 3).Select(i => new Twins(model, i, 80)).ToArray();
        using var workspace = new StepWorkspace();
        for (int step = 0; step < 3; step++) StepTogether(model, workspace, [s[0], s[1]]);
        s[0].Dispose(); // ends while the workspace holds its positions: nothing is written back
        for (int step = 0; step < 3; step++) StepTogether(model, workspace, [s[2], s[1]]);
        AssertSameCache(model, s[1].Alone, s[1].Batched);
        AssertSameCache(model, s[2].Alone, s[2].Batched);
        s[1].Dispose();
        s[2].Dispose();
    }
}
