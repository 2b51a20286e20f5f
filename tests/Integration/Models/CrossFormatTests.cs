using Pipeline.Inference.Models;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Models;

/// <summary>The same float32 weights written in every format load to bit-identical logits.</summary>
public sealed class CrossFormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pipeline-formats-").FullName;

    [Fact]
    public void The_same_f32_weights_from_llama2c_sharded_safetensors_and_gguf_give_bit_identical_logits()
    {
        // llama2.c fixes theta at 10000; GQA (4 heads, 2 KV heads), untied classifier, 3 shards.
        var model = new TinyModel(new TinySpec { RopeTheta = 10000f, Tied = false });
        var llama2c = TinyModelFiles.WriteLlama2c(model, Path.Combine(_dir, "llama2c"));
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"), "F32", shards: 3);
        var gguf = TinyModelFiles.WriteGguf(model, Path.Combine(_dir, "model.gguf"));
        var tokens = ModelRun.Tokens(70, model.Spec.Vocab, 12);
        var cache = Path.Combine(_dir, "cache");

        var fromLlama2c = ModelRun.StepwiseLogits(llama2c, cache, tokens);
        Assert.True(ModelRun.BitIdentical(fromLlama2c, ModelRun.StepwiseLogits(hf, cache, tokens)), "safetensors differs from llama2.c");
        Assert.True(ModelRun.BitIdentical(fromLlama2c, ModelRun.StepwiseLogits(gguf, cache, tokens)), "GGUF differs from llama2.c");
    }

    [Fact]
    public void Safetensors_bf16_shards_and_gguf_agree_bit_for_bit_with_rope_theta_500000()
    {
        var model = new TinyModel(new TinySpec { RopeTheta = 500000f, Eps = 1e-6f });
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"), "BF16", shards: 2);
        var gguf = TinyModelFiles.WriteGguf(model, Path.Combine(_dir, "model.gguf"));
        var tokens = ModelRun.Tokens(40, model.Spec.Vocab, 13);
        var cache = Path.Combine(_dir, "cache");
        Assert.True(ModelRun.BitIdentical(ModelRun.StepwiseLogits(hf, cache, tokens), ModelRun.StepwiseLogits(gguf, cache, tokens)));
    }

    [Fact]
    public void A_graph_with_external_data_loads_in_onnx_runtime_and_gives_the_inline_graphs_logits()
    {
        var model = new TinyModel(new TinySpec { Architecture = "Qwen2ForCausalLM" });
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"));
        var inline = Path.Combine(_dir, "inline.onnx");
        var external = Path.Combine(_dir, "external", "model.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(external)!);
        using (var source = ModelSource.Detect(hf).OpenWeights())
        {
            Assert.Null(LlamaOnnxExporter.Write(source, inline, optimumOutputs: false));
            var data = LlamaOnnxExporter.Write(source, external, optimumOutputs: false, externalDataThresholdBytes: 0);
            Assert.Equal(external + ".data", data);
        }
        // The graph itself holds no weights any more: everything big lives in the data file.
        Assert.True(new FileInfo(external).Length < 64 * 1024, $"graph is {new FileInfo(external).Length} bytes");
        Assert.True(new FileInfo(external + ".data").Length > new FileInfo(inline).Length / 2);

        var tokens = ModelRun.Tokens(20, model.Spec.Vocab, 14);
        Assert.True(ModelRun.BitIdentical(Run(inline, tokens), Run(external, tokens)));
    }

    [Fact]
    public void The_optimum_export_of_a_qwen3_folder_gives_the_runner_graphs_logits_bit_for_bit()
    {
        var model = new TinyModel(new TinySpec { Architecture = "Qwen3ForCausalLM", HeadDim = 16 });
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"), "BF16");
        var exported = Directory.CreateDirectory(Path.Combine(_dir, "exported")).FullName;
        Assert.Null(LlamaOnnxExporter.Write(ModelSource.Detect(hf), Path.Combine(exported, "model.onnx")));
        Assert.Equal(ModelFormat.Onnx, ModelSource.Detect(exported).Format);
        Assert.Equal("qwen3", ModelSource.Detect(exported).Inspect().Architecture);

        var tokens = ModelRun.Tokens(70, model.Spec.Vocab, 15);
        var cache = Path.Combine(_dir, "cache");
        // The export computes attention over key blocks, as the runner's block graph does.
        Assert.True(ModelRun.BitIdentical(ModelRun.StepwiseLogits(hf, cache, tokens, attention: AttentionKernel.Blocks), ModelRun.StepwiseLogits(exported, cache, tokens)));
    }

    [Fact]
    public void The_exporter_moves_to_external_data_when_the_weights_pass_the_protobuf_limit()
    {
        var tinyLlama = new LlamaConfig(2048, 5632, 22, 32, 4, 32000, 2048, SharedClassifier: false);
        Assert.True(LlamaOnnxExporter.WeightBytes(tinyLlama) > LlamaOnnxExporter.ExternalDataThresholdBytes);
        Assert.True(LlamaOnnxExporter.WeightBytes(new TinySpec().ToConfigForTest()) < LlamaOnnxExporter.ExternalDataThresholdBytes);
        Assert.True(LlamaOnnxExporter.ExternalDataThresholdBytes < int.MaxValue, "the threshold must stay under protobuf's 2 GB");
    }

    [Fact]
    public void The_110m_shape_is_written_with_external_data_so_only_the_prepacked_weights_stay_resident_and_the_embedded_model_stays_one_file()
    {
        var shape110m = new LlamaConfig(768, 2048, 12, 12, 12, 32000, 512, SharedClassifier: true);
        Assert.True(LlamaOnnxExporter.WeightBytes(shape110m) > LlamaOnnxExporter.ExternalDataThresholdBytes);
        var embedded = Pipeline.Inference.Models.Llama2Checkpoint.ReadConfig(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"));
        Assert.True(LlamaOnnxExporter.WeightBytes(embedded) < LlamaOnnxExporter.ExternalDataThresholdBytes);
    }

    private static float[][] Run(string onnx, int[] tokens)
    {
        using var model = DecoderModel.Load(onnx, new RunnerOptions { IntraOpThreads = 1 });
        using var cache = new KvCache(model.Config);
        var ws = new StepWorkspace();
        return tokens.Select(t =>
        {
            var logits = new float[model.Config.VocabSize];
            model.Step([new SequenceStep(cache, new[] { t })], ws, logits);
            return logits;
        }).ToArray();
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}

internal static class TinySpecConfig
{
    public static LlamaConfig ToConfigForTest(this TinySpec s) => new(s.Dim, s.Hidden, s.Layers, s.Heads, s.KvHeads, s.Vocab, s.MaxPositions, s.Tied);
}
