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
            var finalAtReport = new List<float[]>();
            decoder.Step(Rows(reported, step), reportedWorkspace, logits, rows =>
            {
                reports.Add(rows);
                // Every reported row's logits are written; no row of a later part is yet.
                var seen = reports.SelectMany(r => r).ToHashSet();
                Assert.All(rows, b => Assert.False(float.IsNaN(logits[b * vocab])));
                Assert.All(Enumerable.Range(0, count).Where(b => !seen.Contains(b)), b => Assert.True(float.IsNaN(logits[b * vocab]), $"row {b} written before its part was reported"));
                finalAtReport.Add([.. rows.SelectMany(b => logits.AsSpan(b * vocab, vocab).ToArray())]);
            });

            // Ten rows in parts of four: three reports that cover every row once.
            Assert.Equal(3, reports.Count);
            Assert.Equal(Enumerable.Range(0, count), reports.SelectMany(r => r).Order());
            var expected = new float[count * vocab];
            decoder.Step(Rows(plain, step), plainWorkspace, expected);
            Assert.True(Bits.Equal(logits, expected), $"step {step}: the reporting step differs from the plain one");
            for (int r = 0; r < reports.Count; r++)
                Assert.True(Bits.Equal(finalAtReport[r], [.. reports[r].SelectMany(b => expected.AsSpan(b * vocab, vocab).ToArray())]), "a reported row's logits changed after its report");
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
        var error = Assert.Throws<InvalidOperationException>(() => decoder.Step(Rows(caches, 1), workspace, new float[10 * decoder.Config.VocabSize], rows =>
        {
            reports.Add(rows);
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
    public async Task With_channels_of_one_message_steps_of_four_parts_finish_because_decode_reads_replies_while_it_waits_to_send()
    {
        using var model = Resident();
        var requests = Enumerable.Range(0, 16).Select(i => Workloads.Varied(i) with { MaxTokens = 48 }).ToArray();
        var host = PipelineHost.Start(model, new PipelineHostOptions { MaxBatch = 16, ChannelCapacity = 1 });

        // Bounded: without the replies read while sending, sample waits to deliver one reply while
        // decode waits to send the fourth part, and this never finishes (nor would disposing the host).
        var run = Task.WhenAll(requests.Select(r => host.CompleteAsync(r)));
        Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromMinutes(2))) == run, "decode and sample deadlocked");
        var results = await run;
        await host.DisposeAsync();

        Assert.All(results, r => Assert.NotEmpty(r.CompletionIds));
        var times = host.Counters.Times;
        Assert.True(times.EarlyRows > 0, $"no step ran in several parts ({times.DecodeRows} rows over {times.DecodeSteps} steps)");
    }

    private static KvCache[] Caches(DecoderModel decoder, int count) =>
        [.. Enumerable.Range(0, count).Select(i => StepInputs.Prefilled(decoder, Past, seed: 40 + i))];

    private static SequenceStep[] Rows(KvCache[] caches, int step) =>
        [.. caches.Select((c, i) => new SequenceStep(c, new[] { 3 + (i + step) % 50 }))];
}
