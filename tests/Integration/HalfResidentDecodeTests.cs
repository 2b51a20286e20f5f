using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;
using Pipeline.Testing;
using Xunit.Abstractions;

namespace Pipeline.Integration;

/// <summary>
/// Resident decode calls on their own graph: GroupQueryAttention over float16 pasts (issue 10: the
/// kernel CUDA runs in one node per layer, and takes only float16). Here the pool is in host memory
/// and the kernel is the CPU's; the pool's work is the same: float16 slots the kernel writes in
/// place, narrowed uploads, positions gathered and widened back into the host caches.
/// </summary>
public sealed class HalfResidentDecodeTests(ITestOutputHelper output)
{
    private static readonly BatchShapes FourRows = BatchShapes.Parse("decode=4,context", DecoderModel.CudaShapes);

    private static LoadedModel HalfResident(string name = WideHeadModel.Stories260K) => LoadedModel.Load(WideHeadModel.Directory(name),
        new RunnerOptions { IntraOpThreads = 1, Shapes = FourRows, ResidentKv = true, HalfResidentDecode = true });

    [Theory]
    [InlineData(1, WideHeadModel.Stories260K)]
    [InlineData(2, WideHeadModel.Stories260K)]
    [InlineData(3, WideHeadModel.HeadDim16)]
    public void Each_sequence_gets_the_logits_it_gets_alone_as_sequences_join_sit_out_come_back_and_leave(int seed, string name)
    {
        using var model = HalfResident(name);
        Assert.Equal("GroupQueryAttention, float16 pasts", model.Decoder.ResidentAttention);

        var explored = ResidentDecodeCheck.RunAgainstSolo(model.Decoder, sequences: 20, steps: 50, seed);

        output.WriteLine(explored.ToString());
        Assert.True(explored.Steps >= 40 && explored.Sequences >= 12, "too few steps or sequences");
        Assert.True(explored.Parts >= 2 && explored.MaxRows > FourRows.DecodeRows, "never needed a second part");
        Assert.True(explored.Rejoins >= 5, "too few sequences came back after sitting a step out");
        Assert.True(explored.Uploads > explored.Sequences, "no sequence was uploaded again on coming back");
        Assert.True(explored.MixedLengths >= 15, "too few steps mixed sequences of different lengths");
    }

    [Fact]
    public void The_decode_graph_has_one_group_query_node_per_layer_over_float16_pasts_and_its_pool_is_half_the_float32_pools_size()
    {
        using var half = HalfResident();
        using var full = LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = FourRows, ResidentKv = true });
        Assert.Equal("blocks, float32 pasts", full.Decoder.ResidentAttention);
        // Prefill keeps the block graph (float32), so prompts are computed as on the float32 path.
        Assert.Equal(AttentionKernel.Blocks, half.Decoder.Attention);

        var (graphPath, _, _) = LoadedModel.Resolve(RepoPaths.ModelDir, null, null, WeightQuantization.F16, AttentionKernel.GroupQuery);
        var graph = Pipeline.Inference.Onnx.Schema.ModelProto.Parser.ParseFrom(File.ReadAllBytes(graphPath));
        int layers = half.Decoder.Config.Layers;
        Assert.Equal(layers, graph.Graph.Node.Count(n => n.OpType == "GroupQueryAttention"));
        // Every node is a kernel launch on CUDA: residual adds ride in the norms, and products stay
        // float16 between the float16 MatMuls (26 nodes a layer before).
        output.WriteLine(string.Join(", ", graph.Graph.Node.GroupBy(n => n.OpType).Select(x => $"{x.Key} {x.Count()}")));
        Assert.True(graph.Graph.Node.Count(n => n.OpType != "Constant") <= 18 * layers + 8, $"{graph.Graph.Node.Count} nodes for {layers} layers");
        Assert.Equal(2 * layers - 1, graph.Graph.Node.Count(n => n.OpType == "SkipSimplifiedLayerNormalization"));
        Assert.All(graph.Graph.Input.Where(i => i.Name.StartsWith("past_key_values.", StringComparison.Ordinal)),
            i => Assert.Equal((int)Pipeline.Inference.Onnx.Schema.TensorProto.Types.DataType.Float16, i.Type.TensorType.ElemType));

        long halfBytes = PoolBytes(half.Decoder), fullBytes = PoolBytes(full.Decoder);
        var c = half.Decoder.Config;
        long pastsHalved = 2L * c.Layers * FourRows.DecodeRows * c.KvHeads * half.Decoder.Shapes.Past(StepKind.Decode, 0, half.Decoder.AttentionBlock, c.SeqLen) * c.HeadDim * 2;
        Assert.True(fullBytes - halfBytes >= pastsHalved, $"float32 pool {fullBytes} bytes, float16 pool {halfBytes}: the pasts did not halve");
    }

    [Theory]
    [InlineData(WeightQuantization.F16)]
    [InlineData(WeightQuantization.None)] // the CPU's float32 graph
    [InlineData(WeightQuantization.Q8)]
    public void With_heads_of_sixteen_the_attention_takes_one_packed_product_and_rotates_it_itself_in_eleven_nodes_a_layer(WeightQuantization quantization)
    {
        var folder = WideHeadModel.Directory(WideHeadModel.HeadDim16);
        var (graphPath, _, _) = LoadedModel.Resolve(folder, null, null, quantization, AttentionKernel.GroupQuery);
        var graph = Pipeline.Inference.Onnx.Schema.ModelProto.Parser.ParseFrom(File.ReadAllBytes(graphPath)).Graph;
        output.WriteLine(string.Join(", ", graph.Node.GroupBy(n => n.OpType).Select(x => $"{x.Key} {x.Count()}")));
        var attention = graph.Node.Where(n => n.OpType == "GroupQueryAttention").ToList();
        Assert.Equal(2, attention.Count);
        Assert.All(attention, n =>
        {
            Assert.Equal("", n.Input[1]); // no separate key
            Assert.Equal("", n.Input[2]); // nor value: the query input is q, k and v packed
            Assert.Equal(1L, n.Attribute.Single(a => a.Name == "do_rotary").I);
            Assert.Equal(1L, n.Attribute.Single(a => a.Name == "rotary_interleaved").I);
            Assert.Equal(quantization == WeightQuantization.Q8 ? "MatMulNBits" : "MatMul", graph.Node.Single(m => m.Output.Contains(n.Input[0])).OpType);
        });
        Assert.DoesNotContain(graph.Node, n => n.OpType == "RotaryEmbedding");
        Assert.Equal(2, graph.Node.Count(n => n.OpType == "QuickGelu"));
        // A layer: norm, q/k/v, attention, output, norm, gate/up, split, SiLU, product, down.
        int perLayer = graph.Node.Count(n => n.Name.StartsWith("layers.0.", StringComparison.Ordinal) && n.OpType != "Constant");
        Assert.True(perLayer <= 11, $"{perLayer} nodes in layer 0");
    }

    private static long PoolBytes(DecoderModel model)
    {
        using var workspace = new StepWorkspace();
        using var cache = StepInputs.Prefilled(model, past: 5, seed: 1);
        model.Step([new SequenceStep(cache, new[] { 3 })], workspace, new float[model.Config.VocabSize]);
        return workspace.ResidentBytes;
    }

    [Theory]
    [InlineData(WideHeadModel.Stories260K)]
    [InlineData(WideHeadModel.HeadDim16)]
    public async Task Through_the_actors_sixteen_requests_match_their_solo_runs_on_the_same_model_and_cancelled_ones_free_their_memory(string name)
    {
        var requests = Enumerable.Range(0, 16).Select(i => Workloads.Varied(i) with { MaxTokens = 40 + i, CaptureLogits = true }).ToArray();
        using var model = HalfResident(name);
        var solo = new GenerationResult[16];
        for (int i = 0; i < 16; i++) solo[i] = await Workloads.SoloAsync(requests[i], model);

        await Workloads.AssertSixteenMatchSoloWhileSomeAreCancelledAsync(model, requests, solo);
    }

    [Fact]
    public void Cuda_with_float16_weights_and_a_resident_pool_picks_the_float16_decode_graph_unless_blocks_are_asked_for()
    {
        Assert.True(new RunnerOptions { UseCuda = true, Quantize = WeightQuantization.F16 }.WantsHalfResidentDecode());
        Assert.False(new RunnerOptions { UseCuda = true }.WantsHalfResidentDecode());
        Assert.False(new RunnerOptions { UseCuda = true, Quantize = WeightQuantization.F16, Attention = AttentionKernel.Blocks }.WantsHalfResidentDecode());
        Assert.False(new RunnerOptions { UseCuda = true, Quantize = WeightQuantization.F16, ResidentKv = false }.WantsHalfResidentDecode());
        Assert.False(new RunnerOptions { UseCuda = true, Quantize = WeightQuantization.F16, Shapes = BatchShapes.Exact }.WantsHalfResidentDecode());
        Assert.False(new RunnerOptions().WantsHalfResidentDecode());
    }

    [Fact]
    public void Where_the_small_call_gives_a_row_other_bits_the_load_time_check_turns_it_off_and_batched_rows_still_match_them_alone()
    {
        // On the CPU the float16 graph's one-row products differ from four-row ones (MLAS): a real case for the check.
        var shapes = BatchShapes.Parse("decode=4,small=1,context", DecoderModel.CudaShapes);
        using var model = LoadedModel.Load(WideHeadModel.Directory(WideHeadModel.HeadDim16),
            new RunnerOptions { IntraOpThreads = 1, Shapes = shapes, ResidentKv = true, HalfResidentDecode = true });
        output.WriteLine(model.Decoder.SmallDecodeFallbackReason);

        Assert.False(model.Decoder.RunsSmallDecodeCalls);
        Assert.False(model.Decoder.SmallSessionLoaded); // its session and weights are freed
        Assert.Contains("other bits than out of the 4-row call", model.Decoder.SmallDecodeFallbackReason);
        long checkCalls = model.Decoder.ResidentPhases!.Now().SmallCalls; // the check's own
        var explored = ResidentDecodeCheck.RunAgainstSolo(model.Decoder, sequences: 8, steps: 20, seed: 3);
        output.WriteLine(explored.ToString());
        Assert.Equal(checkCalls, model.Decoder.ResidentPhases!.Now().SmallCalls);
    }

    [Fact]
    public void Where_the_small_call_gives_the_full_calls_bits_it_runs_and_batched_rows_match_them_alone()
    {
        var shapes = BatchShapes.Parse("decode=4,small=2,context", DecoderModel.CudaShapes);
        using var model = LoadedModel.Load(WideHeadModel.Directory(WideHeadModel.HeadDim16),
            new RunnerOptions { IntraOpThreads = 1, Shapes = shapes, ResidentKv = true, HalfResidentDecode = true });

        Assert.True(model.Decoder.RunsSmallDecodeCalls, model.Decoder.SmallDecodeFallbackReason);
        Assert.True(model.Decoder.SmallSessionLoaded);
        var explored = ResidentDecodeCheck.RunAgainstSolo(model.Decoder, sequences: 8, steps: 20, seed: 3);
        output.WriteLine(explored.ToString());
        var phases = model.Decoder.ResidentPhases!.Now();
        Assert.True(phases.SmallCalls > 0 && phases.SmallCalls < phases.PartCalls, $"{phases.SmallCalls} small calls of {phases.PartCalls}");
    }
}
