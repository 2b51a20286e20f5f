using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Onnx.Schema;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Models;

/// <summary>
/// <c>--quantize f16</c> (issue 10, for CUDA's tensor cores): projection weights stored as float16 and
/// their inputs cast to float16, the rest float32; refused on the CPU, whose float16 MatMul is not
/// batch-invariant. Its invariance on CUDA is checked on the GPU machine (tools/gpu-invariance.sh).
/// </summary>
public sealed class Float16WeightsTests
{
    private static string Convert() =>
        OnnxModelCache.GetOrConvert(ModelSource.Detect(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")), null, WeightQuantization.F16);

    [Fact]
    public void An_f16_graph_stores_every_projection_and_the_classifier_as_float16()
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Convert()));
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name);
        var matMuls = model.Graph.Node.Where(n => n.OpType == "MatMul" && n.Input.Any(initializers.ContainsKey)).ToList();
        var weightTypes = matMuls.Select(n => (TensorProto.Types.DataType)initializers[n.Input.First(initializers.ContainsKey)].DataType).ToList();

        // Per layer: fused q/k/v, output, fused gate/up, down (and the RoPE rotation, a float32 constant); then the classifier.
        Assert.Equal(5 * 4 + 1, weightTypes.Count(t => t == TensorProto.Types.DataType.Float16));
        Assert.Equal("F16", model.MetadataProps.Single(p => p.Key == LlamaOnnxExporter.QuantizationMetadataKey).Value);
    }

    [Fact]
    public void An_f16_graph_with_fused_attention_keeps_its_residual_stream_float16_and_casts_only_the_final_hidden_state()
    {
        var graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Convert())).Graph;
        Assert.Contains(graph.Node, n => n.OpType == "GroupQueryAttention");
        var initializers = graph.Initializer.ToDictionary(t => t.Name);
        // The embedding and every layer's norms are float16 (the residual stream is); the final norm, after the cast back, float32.
        Assert.All(initializers.Values.Where(t => t.Name.Contains("embed", StringComparison.OrdinalIgnoreCase) || t.Name.StartsWith("layers.", StringComparison.Ordinal) && t.Name.Contains("norm", StringComparison.Ordinal)),
            t => Assert.Equal((int)TensorProto.Types.DataType.Float16, t.DataType));
        Assert.Equal((int)TensorProto.Types.DataType.Float, initializers["final_norm.weight"].DataType);
        // One cast to float32 (the last hidden state) and one after the classifier; none between layers.
        Assert.Equal(2, graph.Node.Count(n => n.OpType == "Cast" && n.Attribute.Single(a => a.Name == "to").I == (long)TensorProto.Types.DataType.Float));
    }

    [Fact]
    public void On_the_cpu_an_f16_model_is_refused_naming_why()
    {
        var e = Assert.Throws<ArgumentException>(() => DecoderModel.Load(Convert(), new RunnerOptions { IntraOpThreads = 1 }));
        Assert.Contains("--quantize f16 is for CUDA", e.Message);
        Assert.Contains("not batch-invariant", e.Message);
    }
}
