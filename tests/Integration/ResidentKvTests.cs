using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;
using Pipeline.Testing;
using Xunit.Abstractions;

namespace Pipeline.Integration;

/// <summary>
/// The resident pool (decode pasts kept where the model runs, issue 10) on the CPU, in host memory:
/// the same slots, bindings and in-place appends CUDA uses, against the staged path bit for bit.
/// </summary>
public sealed class ResidentKvTests(ITestOutputHelper output)
{
    // Four slots per call, so a dozen sequences need several parts.
    private static readonly BatchShapes FourRows = BatchShapes.Parse("decode=4,context", DecoderModel.CudaShapes);

    private static LoadedModel Resident() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = FourRows, ResidentKv = true });
    private static LoadedModel Staged() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Attention = AttentionKernel.Blocks });

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Decode_steps_over_a_resident_pool_give_the_staged_paths_logits_and_caches_bit_for_bit_as_sequences_join_sit_out_and_leave(int seed)
    {
        using var resident = Resident();
        using var staged = Staged();
        Assert.Equal("host", resident.Decoder.ResidentKv);

        var explored = ResidentDecodeCheck.Run(resident.Decoder, staged.Decoder, sequences: 24, steps: 60, seed);

        output.WriteLine(explored.ToString());
        Assert.True(explored.Steps >= 50 && explored.Sequences >= 12, "too few steps or sequences");
        Assert.True(explored.Parts >= 2 && explored.MaxRows > FourRows.DecodeRows, "never needed a second part");
        Assert.True(explored.Rejoins >= 5, "too few sequences came back after sitting a step out");
        Assert.True(explored.Uploads > explored.Sequences, "no sequence was uploaded again on coming back");
        Assert.True(explored.MixedLengths >= 20, "too few steps mixed sequences of different lengths");
    }

    [Fact]
    public void With_a_small_call_over_each_parts_first_two_slots_decode_steps_still_give_the_staged_bits_and_both_calls_run()
    {
        var shapes = BatchShapes.Parse("decode=4,small=2,context", DecoderModel.CudaShapes);
        using var resident = LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = shapes, ResidentKv = true });
        using var staged = Staged();

        var explored = ResidentDecodeCheck.Run(resident.Decoder, staged.Decoder, sequences: 24, steps: 60, seed: 4);

        var phases = resident.Decoder.ResidentPhases!.Now();
        output.WriteLine($"{explored}; {phases.SmallCalls} small calls of {phases.PartCalls}");
        Assert.True(phases.SmallCalls >= 10, $"only {phases.SmallCalls} small calls");
        Assert.True(phases.PartCalls - phases.SmallCalls >= 10, $"only {phases.PartCalls - phases.SmallCalls} full calls");
    }

    [Fact]
    public async Task Through_the_actors_lanes_whose_rows_sit_in_the_first_slots_run_the_small_call_and_every_request_matches_its_solo_run()
    {
        var shapes = BatchShapes.Parse("decode=4,small=2,context", DecoderModel.CudaShapes);
        var requests = Enumerable.Range(0, 16).Select(i => Workloads.Varied(i) with { MaxTokens = 40 + i, CaptureLogits = true }).ToArray();
        var solo = new GenerationResult[16];
        using (var staged = Staged())
            for (int i = 0; i < 16; i++) solo[i] = await Workloads.SoloAsync(requests[i], staged);
        using var model = LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = shapes, ResidentKv = true });

        await Workloads.AssertSixteenMatchSoloWhileSomeAreCancelledAsync(model, requests, solo);

        var phases = model.Decoder.ResidentPhases!.Now();
        Assert.True(phases.SmallCalls > 0 && phases.SmallCalls < phases.PartCalls, $"{phases.SmallCalls} small calls of {phases.PartCalls}");
    }

    [Theory]
    [InlineData("decode=4,small=4,context")]
    [InlineData("decode=4,small=9,context")]
    public void A_small_call_of_as_many_rows_as_the_full_one_or_more_is_refused(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = BatchShapes.Parse(text, DecoderModel.CudaShapes), ResidentKv = true }));
        Assert.Contains("must be fewer rows than decode=4", e.Message);
    }

    [Fact]
    public void With_a_32768_id_vocabulary_each_parts_megabytes_of_logits_land_in_their_rows_bit_for_bit()
    {
        // Eight slots of 32,768 logits: 1 MB a part, which is copied into place by several threads.
        var shapes = BatchShapes.Parse("decode=8,context", DecoderModel.CudaShapes);
        var folder = WideHeadModel.Directory(WideHeadModel.Vocabulary32K);
        using var resident = LoadedModel.Load(folder, new RunnerOptions { IntraOpThreads = 1, Shapes = shapes, ResidentKv = true });
        using var staged = LoadedModel.Load(folder, new RunnerOptions { IntraOpThreads = 1, Attention = AttentionKernel.Blocks });

        var explored = ResidentDecodeCheck.Run(resident.Decoder, staged.Decoder, sequences: 24, steps: 24, seed: 5);

        output.WriteLine(explored.ToString());
        Assert.True(explored.Parts >= 2 && explored.MaxRows > shapes.DecodeRows, "never needed a second part");
    }

    [Fact]
    public void A_later_workspace_reuses_the_parts_an_earlier_one_gave_back_and_still_gets_the_staged_bits()
    {
        using var resident = Resident();
        using var staged = Staged();

        var first = ResidentDecodeCheck.Run(resident.Decoder, staged.Decoder, sequences: 24, steps: 30, seed: 5);
        int made = resident.Decoder.ResidentPartsMade;
        var second = ResidentDecodeCheck.Run(resident.Decoder, staged.Decoder, sequences: 24, steps: 30, seed: 6);

        Assert.True(first.Parts >= 2 && second.Parts >= 2, "a check needed only one part");
        Assert.Equal(first.Parts, made);
        // The second workspace's parts came off the shelf: new ones only beyond the first's count.
        Assert.Equal(Math.Max(first.Parts, second.Parts), resident.Decoder.ResidentPartsMade);
    }

    [Fact]
    public void A_sequence_that_keeps_decoding_is_uploaded_once_and_then_only_its_new_positions_are_written()
    {
        using var resident = Resident();
        var model = resident.Decoder;
        var caches = Enumerable.Range(0, 6).Select(i => StepInputs.Prefilled(model, past: 10 + 30 * i, seed: i)).ToArray();
        using var workspace = new StepWorkspace();
        var logits = new float[caches.Length * model.Config.VocabSize];
        for (int step = 0; step < 20; step++)
            model.Step(caches.Select((c, i) => new SequenceStep(c, new[] { 3 + (i * 7 + step) % 500 })).ToArray(), workspace, logits);

        var pool = workspace.ResidentPool(() => throw new InvalidOperationException("no pool"));
        Assert.Equal(6, pool.Uploads);
        Assert.Equal(2, pool.PartCount);
        Assert.All(caches.Select((c, i) => (c, i)), x => Assert.Equal(10 + 30 * x.i + 20, x.c.Length));
        // Nothing came back per step: the new positions stayed in the slots until a reader asked.
        Assert.Equal(0, pool.WrittenBack);
        Assert.All(caches.Select((c, i) => (c, i)), x => Assert.Equal(10 + 30 * x.i, x.c.HostLength));
        _ = caches[0].Keys(0, 0);
        Assert.Equal(1, pool.WrittenBack);
        Assert.Equal(caches[0].Length, caches[0].HostLength);
        foreach (var c in caches) c.Dispose();
    }

    [Fact]
    public void After_a_failed_call_every_sequence_is_uploaded_again_from_its_host_cache()
    {
        using var resident = Resident();
        using var staged = Staged();
        var model = resident.Decoder;
        var caches = Enumerable.Range(0, 3).Select(i => StepInputs.Prefilled(model, past: 20 + i, seed: i)).ToArray();
        var copies = caches.Select(c => c.Clone()).ToArray();
        using var workspace = new StepWorkspace();
        int vocab = model.Config.VocabSize;
        var logits = new float[4 * vocab];
        model.Step(caches.Select(c => new SequenceStep(c, new[] { 5 })).ToArray(), workspace, logits);
        staged.Decoder.Step(copies.Select(c => new SequenceStep(c, new[] { 5 })).ToArray(), new StepWorkspace(), new float[3 * vocab]);

        // The same sequence twice in one call is refused, and the pool forgets every slot.
        var twice = new[] { new SequenceStep(caches[0], new[] { 6 }), new SequenceStep(caches[0], new[] { 6 }) };
        Assert.Throws<ArgumentException>(() => model.Step(twice, workspace, logits));

        var expected = new float[3 * vocab];
        model.Step(caches.Select(c => new SequenceStep(c, new[] { 7 })).ToArray(), workspace, logits);
        staged.Decoder.Step(copies.Select(c => new SequenceStep(c, new[] { 7 })).ToArray(), new StepWorkspace(), expected);
        Assert.Equal(6, workspace.ResidentPool(() => throw new InvalidOperationException("no pool")).Uploads);
        Assert.True(logits.AsSpan(0, 3 * vocab).SequenceEqual(expected), "logits after the failed call differ from the staged path's");
        foreach (var c in caches.Concat(copies)) c.Dispose();
    }

    [Fact]
    public void Resident_kv_is_refused_with_a_reason_when_decode_calls_have_no_fixed_shape()
    {
        var e = Assert.Throws<ArgumentException>(() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, ResidentKv = true }));
        Assert.Contains("--resident-kv needs fixed decode shapes", e.Message);
    }

    [Fact]
    public async Task Through_the_actors_sixteen_requests_decoding_over_a_resident_pool_match_their_solo_runs_with_one_lane_drawn_while_another_lanes_call_runs()
    {
        var requests = Enumerable.Range(0, 16).Select(i => Workloads.Varied(i) with { MaxTokens = 40 + i, CaptureLogits = true }).ToArray();
        var solo = new GenerationResult[16];
        using (var staged = Staged())
            for (int i = 0; i < 16; i++) solo[i] = await Workloads.SoloAsync(requests[i], staged);
        using var model = Resident();

        var times = await Workloads.AssertSixteenMatchSoloWhileSomeAreCancelledAsync(model, requests, solo);
        // Sixteen sequences ran in lanes of four rows (one part each); lanes were drawn while others' calls ran.
        Assert.True(times.EarlyRows >= times.DecodeSteps, $"{times.EarlyRows} rows drawn during another lane's call over {times.DecodeSteps} calls");
    }

    [Fact]
    public async Task The_device_thread_runs_every_call_from_any_thread_on_itself_one_at_a_time_and_rethrows_a_calls_exception()
    {
        using var device = new Pipeline.Inference.Runtime.Resident.DeviceThread("test-device");
        var threads = new System.Collections.Concurrent.ConcurrentBag<int>();
        int inside = 0, overlapped = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (int i = 0; i < 25; i++)
                device.Invoke(() =>
                {
                    if (Interlocked.Increment(ref inside) > 1) Interlocked.Increment(ref overlapped);
                    threads.Add(Environment.CurrentManagedThreadId);
                    Thread.SpinWait(100);
                    Interlocked.Decrement(ref inside);
                });
        })));

        Assert.Equal(200, threads.Count);
        Assert.Single(threads.Distinct());
        Assert.Equal(0, overlapped);
        var e = Assert.Throws<InvalidOperationException>(() => device.Invoke(() => throw new InvalidOperationException("boom")));
        Assert.Equal("boom", e.Message);
        device.Invoke(() => threads.Add(-1)); // still serving after a failed call
        Assert.Contains(-1, threads);
    }

    [Fact]
    public void Cuda_graphs_are_refused_with_a_reason_on_the_cpu()
    {
        var e = Assert.Throws<ArgumentException>(() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = FourRows, ResidentKv = true, CudaGraph = true }));
        Assert.Contains("--cuda-graph needs the CUDA execution provider", e.Message);
    }

    [Fact]
    public void Resident_kv_is_off_by_default_on_the_cpu_even_with_fixed_shapes()
    {
        using var padded = LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = FourRows });
        Assert.Null(padded.Decoder.ResidentKv);
    }
}
