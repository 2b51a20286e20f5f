using Pipeline.Inference.Runtime;
using Pipeline.Testing;
using Xunit.Abstractions;

namespace Pipeline.Integration;

/// <summary>
/// Prompts' first chunks on the float16 GroupQueryAttention graph (issue 10: a first chunk on the
/// block graph cost ~14 ms on an H200, most of it launches and float32 presents coming back). Here
/// the kernels are the CPU's; the mechanism is the one CUDA runs: the fixed prefill rows, the
/// block-padded width, no past, float16 presents widened into each row's cache.
/// </summary>
public sealed class HalfPrefillTests(ITestOutputHelper output)
{
    private static readonly BatchShapes FourRows = BatchShapes.Parse("decode=4,prefill=4,block,context", DecoderModel.CudaShapes);

    private static LoadedModel Model(bool halfPrefill = true, string name = WideHeadModel.Stories260K) => LoadedModel.Load(WideHeadModel.Directory(name),
        new RunnerOptions { IntraOpThreads = 1, Shapes = FourRows, ResidentKv = true, HalfResidentDecode = true, HalfPrefill = halfPrefill });

    [Theory]
    [InlineData(WideHeadModel.Stories260K)]
    [InlineData(WideHeadModel.HeadDim16)]
    public void A_first_chunk_gets_the_same_logits_and_cache_bits_alone_as_beside_any_other_prompts(string name)
    {
        using var model = Model(name: name);
        var decoder = model.Decoder;
        Assert.True(decoder.HalfPrefill);
        int vocab = decoder.Config.VocabSize;
        int[] lengths = [1, 7, 3, decoder.AttentionBlock, 20, 2, 11];
        var prompts = lengths.Select((n, i) => StepInputs.Tokens(100 + i, n)).ToArray();

        var alone = prompts.Select(p => Prefill(decoder, [p])).Select(r => r[0]).ToArray();
        // Every way of cutting the prompts into calls of up to the fixed rows, in two orders.
        int calls = 0;
        foreach (var order in new[] { Enumerable.Range(0, prompts.Length).ToArray(), Enumerable.Range(0, prompts.Length).Reverse().ToArray() })
            for (int size = 2; size <= FourRows.PrefillRows; size++)
                foreach (var group in order.Chunk(size))
                {
                    var together = Prefill(decoder, group.Select(i => prompts[i]).ToArray());
                    calls++;
                    for (int g = 0; g < group.Length; g++)
                    {
                        var (logits, cache) = (together[g].Logits, together[g].Cache);
                        Assert.True(Bits.Equal(alone[group[g]].Logits, logits), $"prompt {group[g]} in [{string.Join(",", group)}]: logits differ from alone");
                        Assert.Equal(lengths[group[g]], cache.Length);
                        for (int l = 0; l < decoder.Config.Layers; l++)
                            for (int h = 0; h < decoder.Config.KvHeads; h++)
                            {
                                Assert.True(Bits.Equal(alone[group[g]].Cache.Keys(l, h), cache.Keys(l, h)), $"prompt {group[g]}, layer {l}: keys differ");
                                Assert.True(Bits.Equal(alone[group[g]].Cache.Values(l, h), cache.Values(l, h)), $"prompt {group[g]}, layer {l}: values differ");
                            }
                    }
                }
        output.WriteLine($"{calls} batched calls compared with {prompts.Length} solo ones");
        Assert.True(calls >= 10);
        Assert.Equal(calls + prompts.Length, decoder.ResidentPhases!.Now().PrefillCalls);
    }

    [Theory]
    [InlineData(WideHeadModel.Stories260K)]
    [InlineData(WideHeadModel.HeadDim16)]
    public void A_first_chunk_on_the_float16_graph_computes_what_the_float32_graph_computes_to_float16_precision(string name)
    {
        using var half = Model(name: name);
        using var full = Model(halfPrefill: false, name: name);
        Assert.False(full.Decoder.HalfPrefill);
        var prompt = StepInputs.Tokens(7, 30);

        var a = Prefill(half.Decoder, [prompt])[0];
        var b = Prefill(full.Decoder, [prompt])[0];

        double worst = 0, scale = b.Logits.Max(x => Math.Abs(x));
        for (int i = 0; i < a.Logits.Length; i++) worst = Math.Max(worst, Math.Abs(a.Logits[i] - b.Logits[i]));
        output.WriteLine($"largest logit difference {worst:G4} (largest logit {scale:G4})");
        Assert.True(worst <= 0.02 * scale, $"logits differ by {worst} against a scale of {scale}");
        Assert.Equal(Array.IndexOf(b.Logits, b.Logits.Max()), Array.IndexOf(a.Logits, a.Logits.Max()));
        Assert.False(Bits.Equal(a.Logits, b.Logits)); // it did run the other graph
    }

    [Theory]
    [InlineData(WideHeadModel.Stories260K)]
    [InlineData(WideHeadModel.HeadDim16)]
    public void A_prompt_longer_than_a_chunk_continues_on_the_model_graph_from_the_widened_cache_alike_alone_and_batched(string name)
    {
        using var model = Model(name: name);
        var decoder = model.Decoder;
        int block = decoder.AttentionBlock;
        var longPrompt = StepInputs.Tokens(3, block + 9);
        var shortPrompt = StepInputs.Tokens(4, 5);

        float[] Continue(int[][] others)
        {
            var first = Prefill(decoder, [longPrompt[..block], .. others]);
            var cache = first[0].Cache;
            var logits = new float[decoder.Config.VocabSize];
            decoder.Step([new SequenceStep(cache, longPrompt.AsMemory(block))], new StepWorkspace(), logits, StepKind.Prefill);
            Assert.Equal(longPrompt.Length, cache.Length);
            return logits;
        }

        Assert.True(Bits.Equal(Continue([]), Continue([shortPrompt, shortPrompt[..2]])));
    }

    [Theory]
    [InlineData(WideHeadModel.Stories260K)]
    [InlineData(WideHeadModel.HeadDim16)]
    public void A_pool_takes_a_prompts_positions_from_its_prefill_block_on_the_device_and_decodes_as_from_the_host_copy(string name)
    {
        using var model = Model(name: name);
        var decoder = model.Decoder;
        int vocab = decoder.Config.VocabSize;
        int[][] prompts = [StepInputs.Tokens(11, 9), StepInputs.Tokens(12, 30), StepInputs.Tokens(13, 2)];
        var onDevice = Prefill(decoder, prompts).Select(r => r.Cache).ToArray();
        var viaHost = Prefill(decoder, prompts).Select(r => r.Cache).ToArray();
        Assert.All(onDevice, c => Assert.IsType<Pipeline.Inference.Runtime.Resident.PrefillBlock>(c.Holder));
        foreach (var c in viaHost) _ = c.Keys(0, 0); // written back: the pool uploads these from the host
        Assert.All(viaHost, c => Assert.Null(c.Holder));

        using var deviceWorkspace = new StepWorkspace();
        using var hostWorkspace = new StepWorkspace();
        var next = prompts.Select((p, i) => new[] { 3 + i }).ToArray();
        for (int step = 0; step < 3; step++)
        {
            var a = new float[prompts.Length * vocab];
            var b = new float[prompts.Length * vocab];
            decoder.Step(onDevice.Select((c, i) => new SequenceStep(c, next[i])).ToArray(), deviceWorkspace, a);
            decoder.Step(viaHost.Select((c, i) => new SequenceStep(c, next[i])).ToArray(), hostWorkspace, b);
            Assert.True(Bits.Equal(a, b), $"step {step}: decoding from the device copy differs from the host copy");
        }
        var pool = deviceWorkspace.ResidentPool(() => throw new InvalidOperationException("no pool"));
        Assert.All(onDevice, c => Assert.Same(pool, c.Holder));
        Assert.Equal(0, pool.WrittenBack);
        // Both calls' blocks are back on the shelf: one given back by the pool, one by the write-backs.
        Assert.Equal((2, 2), decoder.PrefillBlocks);
        foreach (var c in onDevice.Concat(viaHost)) c.Dispose();
    }

    [Fact]
    public void A_prefill_block_goes_back_to_its_shelf_when_the_last_of_its_rows_is_disposed_and_is_reused()
    {
        using var model = Model();
        var decoder = model.Decoder;
        var first = Prefill(decoder, [StepInputs.Tokens(1, 5), StepInputs.Tokens(2, 6)]);
        Assert.Equal((1, 0), decoder.PrefillBlocks);
        first[0].Cache.Dispose();
        Assert.Equal((1, 0), decoder.PrefillBlocks);
        first[1].Cache.Dispose();
        Assert.Equal((1, 1), decoder.PrefillBlocks);

        var second = Prefill(decoder, [StepInputs.Tokens(3, 7)]);
        Assert.Equal((1, 0), decoder.PrefillBlocks);
        second[0].Cache.Dispose();
        Assert.Equal((1, 1), decoder.PrefillBlocks);
    }

    [Theory]
    [InlineData(WideHeadModel.Stories260K)]
    [InlineData(WideHeadModel.HeadDim16)]
    public async Task Through_the_actors_sixteen_requests_match_their_solo_runs_and_cancelled_ones_free_their_memory(string name)
    {
        var requests = Enumerable.Range(0, 16).Select(i => Workloads.Varied(i) with { MaxTokens = 40 + i, CaptureLogits = true }).ToArray();
        using var model = Model(name: name);
        var solo = new GenerationResult[16];
        for (int i = 0; i < 16; i++) solo[i] = await Workloads.SoloAsync(requests[i], model);

        await Workloads.AssertSixteenMatchSoloWhileSomeAreCancelledAsync(model, requests, solo);
        Assert.True(model.Decoder.ResidentPhases!.Now().PrefillCalls > 0, "no prefill call ran on the float16 graph");
        // Every prompt's block was let go (taken by the pool, or its cache disposed on cancellation).
        var (made, free) = model.Decoder.PrefillBlocks;
        Assert.True(made > 0);
        Assert.Equal(made, free);
    }

    private static (float[] Logits, KvCache Cache)[] Prefill(DecoderModel decoder, int[][] prompts)
    {
        int vocab = decoder.Config.VocabSize;
        var caches = prompts.Select(_ => new KvCache(decoder.Config)).ToArray();
        var logits = new float[prompts.Length * vocab];
        decoder.Step(prompts.Select((p, i) => new SequenceStep(caches[i], p)).ToArray(), new StepWorkspace(), logits, StepKind.Prefill);
        return prompts.Select((_, i) => (logits.AsSpan(i * vocab, vocab).ToArray(), caches[i])).ToArray();
    }
}
