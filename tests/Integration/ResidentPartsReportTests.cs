using Pipeline.Actors.Scheduling;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Runtime.Resident;
using Pipeline.Testing;

namespace Pipeline.Integration;

/// <summary>
/// A decode step on a resident pool reports each part's rows as soon as their logits land, so the
/// decode actor hands them to sample while later parts run (issue 10: sampling a step's rows took
/// 1.3 ms of a 3.9 ms step at 64 rows on the H200, all of it after the call). Host-memory pool of
/// four-slot parts, as in <see cref="ResidentKvTests"/>.
/// </summary>
public sealed class ResidentPartsReportTests
{
    private static readonly BatchShapes FourRows = BatchShapes.Parse("decode=4,context", DecoderModel.CudaShapes);
    private const int Past = 5;

    private static LoadedModel Resident() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = FourRows, ResidentKv = true });

    [Fact]
    public void Each_parts_rows_are_reported_with_their_final_logits_before_the_next_part_runs_and_the_step_equals_an_unreported_one()
    {
        using var model = Resident();
        var decoder = model.Decoder;
        Assert.True(decoder.DecodesInParts);
        int vocab = decoder.Config.VocabSize, count = 10;
        var reported = Caches(decoder, count);
        var plain = Caches(decoder, count);
        using var reportedWorkspace = new StepWorkspace();
        using var plainWorkspace = new StepWorkspace();

        for (int step = 0; step < 3; step++)
        {
            var logits = new float[count * vocab];
            Array.Fill(logits, float.NaN);
            var reports = new List<int[]>();
            var atReport = new float[count][];
            long callsBefore = decoder.ResidentPhases!.Now().PartCalls;
            decoder.Step(Rows(reported, step), reportedWorkspace, logits, ready =>
            {
                reports.Add(ready.Rows);
                // The part that just ran is the only one since the last report: the next has not run.
                Assert.Equal(callsBefore + reports.Count, decoder.ResidentPhases!.Now().PartCalls);
                for (int i = 0; i < ready.Rows.Length; i++)
                    atReport[ready.Rows[i]] = ready.Logits.Span.Slice(ready.LogitRows[i] * vocab, vocab).ToArray();
            });

            // Ten rows in parts of four: three reports that cover every row once, their logits where
            // the parts' downloads put them (the caller's buffer is not written).
            Assert.Equal(3, reports.Count);
            Assert.Equal(Enumerable.Range(0, count), reports.SelectMany(r => r).Order());
            Assert.All(logits, x => Assert.True(float.IsNaN(x)));
            var expected = new float[count * vocab];
            decoder.Step(Rows(plain, step), plainWorkspace, expected);
            for (int b = 0; b < count; b++)
                Assert.True(Bits.Equal(atReport[b], expected.AsSpan(b * vocab, vocab).ToArray()), $"step {step}, row {b}: the reported logits differ from the plain step's");
        }
        foreach (var c in reported.Concat(plain)) c.Dispose();
    }

    [Fact]
    public void A_step_that_fails_after_some_parts_keeps_their_rows_in_the_pool_and_writes_back_only_the_rest()
    {
        using var model = Resident();
        var decoder = model.Decoder;
        var caches = Caches(decoder, 10);
        using var workspace = new StepWorkspace();
        decoder.Step(Rows(caches, 0), workspace, new float[10 * decoder.Config.VocabSize]);
        var pool = workspace.ResidentPool(() => throw new InvalidOperationException("no pool"));
        Assert.All(caches, c => Assert.Same(pool, c.Holder));

        var reports = new List<int[]>();
        var error = Assert.Throws<InvalidOperationException>(() => decoder.Step(Rows(caches, 1), workspace, new float[10 * decoder.Config.VocabSize], ready =>
        {
            reports.Add(ready.Rows);
            if (reports.Count == 2) throw new InvalidOperationException("the receiver failed");
        }));
        Assert.Equal("the receiver failed", error.Message);

        // The two reported parts finished: their rows stay held by the pool at their new length.
        var kept = reports.SelectMany(r => r).ToHashSet();
        Assert.Equal(8, kept.Count);
        foreach (int b in kept)
        {
            Assert.Same(pool, caches[b].Holder);
            Assert.Equal(Past + 2, caches[b].Length);
        }
        // The unfinished part's rows went back to their caches (written back, not lost).
        foreach (int b in Enumerable.Range(0, 10).Where(b => !kept.Contains(b)))
        {
            Assert.Null(caches[b].Holder);
            _ = caches[b].Keys(0, 0);
        }
        foreach (var c in caches) c.Dispose();
    }

    [Fact]
    public async Task With_channels_of_one_message_and_slow_hand_offs_sixteen_requests_in_four_lanes_finish_and_lanes_are_drawn_while_others_run()
    {
        using var model = Resident();
        var requests = Enumerable.Range(0, 16).Select(i => Workloads.Varied(i) with { MaxTokens = 48 }).ToArray();
        // Slow hand-offs both ways, so sample holds several lanes' messages while decode sends the next.
        var host = PipelineHost.Start(model, new PipelineHostOptions { MaxBatch = 16, ChannelCapacity = 1, Hook = new SlowHandOffs() });

        // Bounded: decode must never wait to send a lane's rows while sample waits to deliver a reply
        // (it reads replies between any two messages, and while it waits to send); a deadlock would
        // never finish (nor would disposing the host).
        var run = Task.WhenAll(requests.Select(r => host.CompleteAsync(r)));
        Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromMinutes(2))) == run, "decode and sample deadlocked");
        var results = await run;
        await host.DisposeAsync();

        Assert.All(results, r => Assert.NotEmpty(r.CompletionIds));
        var times = host.Counters.Times;
        Assert.True(times.EarlyRows > 0, $"no lane was drawn while another's call ran ({times.DecodeRows} rows over {times.DecodeSteps} calls)");
    }

    /// <summary>Delays every decode → sample message a little and every reply more, one request at a time.</summary>
    private sealed class SlowHandOffs : ISchedulingHook
    {
        public async ValueTask BeforeHandOffAsync(HandOff point, long requestId)
        {
            if (point == HandOff.Stepped) await Task.Delay(1);
            else if (point == HandOff.Sampled) await Task.Delay(2);
        }

        public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready) => [.. Enumerable.Range(0, ready.Count)];
    }

    private static KvCache[] Caches(DecoderModel decoder, int count) =>
        [.. Enumerable.Range(0, count).Select(i => StepInputs.Prefilled(decoder, Past, seed: 40 + i))];

    private static SequenceStep[] Rows(KvCache[] caches, int step) =>
        [.. caches.Select((c, i) => new SequenceStep(c, new[] { 3 + (i + step) % 50 }))];
}
