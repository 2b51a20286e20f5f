using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;
using Pipeline.Testing;

namespace Pipeline.Integration;

/// <summary>
/// The CPU runner's graph computes attention with ONNX Runtime's GroupQueryAttention (one node
/// per layer). Its products are MLAS GEMMs whose bits depend on the call's width, so the runner
/// splits calls until every prompt chunk is computed at its own width; these tests fail when a
/// split is removed.
/// </summary>
public sealed class GroupQueryAttentionTests
{
    private static LoadedModel Cpu() => LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1 });

    [Fact]
    public void The_cpu_runner_attends_with_one_group_query_node_per_layer_and_the_cuda_options_keep_the_block_graph()
    {
        Assert.Equal(AttentionKernel.GroupQuery, new RunnerOptions().AttentionKernelFor());
        Assert.Equal(AttentionKernel.Blocks, new RunnerOptions { UseCuda = true }.AttentionKernelFor());
        Assert.Equal(AttentionKernel.Blocks, new RunnerOptions { Shapes = DecoderModel.CudaShapes }.AttentionKernelFor());
        Assert.Equal(AttentionKernel.Blocks, new RunnerOptions { ResidentKv = true }.AttentionKernelFor());

        var (onnx, _, _) = LoadedModel.Resolve(RepoPaths.ModelDir, null, null, WeightQuantization.None, AttentionKernel.GroupQuery);
        var graph = Pipeline.Inference.Onnx.Schema.ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx));
        int layers = Pipeline.Inference.Models.Llama2Checkpoint.ReadConfig(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")).Layers;
        Assert.Equal(layers, graph.Graph.Node.Count(n => n.OpType == "GroupQueryAttention" && n.Domain == "com.microsoft"));
        Assert.DoesNotContain(graph.Graph.Node, n => n.OpType is "CumSum" or "ReduceMax");
        // The new keys and values are read from the staged past the kernel wrote them into.
        Assert.DoesNotContain(graph.Graph.Output, o => o.Name.StartsWith("new_key_values.", StringComparison.Ordinal));
        Assert.Equal(2 * layers, graph.Graph.Output.Count(o => o.Name.StartsWith(LlamaOnnxExporter.PresentPrefix, StringComparison.Ordinal)));
        Assert.Contains(graph.MetadataProps, p => p.Key == LlamaOnnxExporter.AttentionMetadataKey && p.Value == nameof(AttentionKernel.GroupQuery));
    }

    [Theory]
    [InlineData(17, 18)]   // a width MLAS computes differently once padded
    [InlineData(17, 64)]
    [InlineData(33, 40)]
    [InlineData(1, 5)]     // one token alone runs MLAS's M = 1 kernel; padded, the general one
    [InlineData(5, 6)]
    public void Prompts_of_different_lengths_prefilled_together_get_the_bits_each_gets_alone(int shortLength, int longLength)
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        int vocab = model.Config.VocabSize;
        var prompt = StepInputs.Tokens(shortLength, shortLength);
        using var alone = new KvCache(model.Config);
        using var beside = new KvCache(model.Config);
        using var other = new KvCache(model.Config);
        var soloLogits = new float[vocab];
        var batchLogits = new float[2 * vocab];

        model.Step([new SequenceStep(alone, prompt)], new StepWorkspace(), soloLogits, StepKind.Prefill);
        model.Step([new SequenceStep(other, StepInputs.Tokens(longLength, longLength)), new SequenceStep(beside, prompt)], new StepWorkspace(), batchLogits, StepKind.Prefill);

        Assert.True(Bits.Equal(soloLogits, batchLogits.AsSpan(vocab, vocab)), "logits differ");
        AssertSameCache(model, alone, beside);
    }

    [Fact]
    public void A_decoding_batch_keeps_its_rows_in_place_as_they_grow_copying_each_past_only_when_it_joins()
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        // Caches made at their reservation, as the prefill actor makes them, prefilled alone.
        var caches = Enumerable.Range(0, 3).Select(_ => new KvCache(model.Config, initialCapacity: 200, maxCapacity: 200)).ToArray();
        for (int i = 0; i < caches.Length; i++)
            model.Step([new SequenceStep(caches[i], StepInputs.Tokens(i, 10 + i))], new StepWorkspace(), new float[model.Config.VocabSize], StepKind.Prefill);
        var workspace = new StepWorkspace();
        var logits = new float[caches.Length * model.Config.VocabSize];

        // 150 steps take the rows from 10-12 positions past 64 and 128: the stride follows the
        // caches' capacity (200, so 208: whole units of 16), not their length, and no row is laid out again.
        for (int step = 0; step < 150; step++)
        {
            model.Step(caches.Select(c => new SequenceStep(c, new[] { 3 + step % 500 })).ToArray(), workspace, logits, StepKind.Decode);
            Assert.Equal(208, workspace.PastStride);
        }
        Assert.Equal(caches.Length, workspace.RowsCopied);
        Assert.All(caches, c => Assert.Equal(200, c.Capacity));
        foreach (var c in caches) c.Dispose();
    }

    [Fact]
    public void A_prompt_continuing_beside_others_gets_its_solo_bits_though_the_kernel_takes_such_a_chunk_only_alone()
    {
        using var loaded = Cpu();
        var model = loaded.Decoder;
        int vocab = model.Config.VocabSize;
        using var alone = StepInputs.Prefilled(model, past: 64, seed: 3);
        using var beside = alone.Clone();
        using var fresh = new KvCache(model.Config);
        var chunk = StepInputs.Tokens(9, 20);
        var soloLogits = new float[vocab];
        var batchLogits = new float[2 * vocab];

        model.Step([new SequenceStep(alone, chunk)], new StepWorkspace(), soloLogits, StepKind.Prefill);
        // The same width as the first chunk beside it: only the past sets them apart.
        model.Step([new SequenceStep(fresh, StepInputs.Tokens(10, 20)), new SequenceStep(beside, chunk)], new StepWorkspace(), batchLogits, StepKind.Prefill);

        Assert.True(Bits.Equal(soloLogits, batchLogits.AsSpan(vocab, vocab)), "logits differ");
        AssertSameCache(model, alone, beside);
        Assert.Equal(20, fresh.Length);
    }

    private static void AssertSameCache(DecoderModel model, KvCache a, KvCache b)
    {
        Assert.Equal(a.Length, b.Length);
        for (int l = 0; l < model.Config.Layers; l++)
            for (int h = 0; h < model.Config.KvHeads; h++)
                Assert.True(Bits.Equal(a.Keys(l, h), b.Keys(l, h)) && Bits.Equal(a.Values(l, h), b.Values(l, h)), $"layer {l} head {h}: cache differs");
    }
}
