using Pipeline.Inference.Models.Sources;
using Microsoft.ML.OnnxRuntime;
using Pipeline.Inference.Models;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

/// <summary>The exported graph in the Hugging Face Optimum decoder layout, driven as any Optimum runtime would.</summary>
public sealed class OptimumLayoutTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pipeline-optimum-").FullName;

    [Fact]
    public void The_exported_graph_has_the_optimum_inputs_and_outputs()
    {
        var path = Export();
        using var session = new InferenceSession(path);
        Assert.Equal(["input_ids", "attention_mask", "position_ids", .. Enumerable.Range(0, 5).SelectMany(l => new[] { $"past_key_values.{l}.key", $"past_key_values.{l}.value" })],
            session.InputMetadata.Keys);
        Assert.Contains("logits", session.OutputMetadata.Keys);
        for (int l = 0; l < 5; l++) Assert.Contains($"present.{l}.key", session.OutputMetadata.Keys);
        Assert.Equal([-1, 4, -1, 8], session.InputMetadata["past_key_values.0.key"].Dimensions);
    }

    [Fact]
    public void The_runners_own_graph_gives_logits_for_the_position_its_one_hot_input_picks_and_the_export_for_every_position()
    {
        var runnerPath = Path.Combine(_dir, "runner.onnx");
        LlamaOnnxExporter.Write(Llama2Checkpoint.Read(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")), runnerPath, optimumOutputs: false);
        using var runner = new InferenceSession(runnerPath);
        using var exported = new InferenceSession(Export());

        Assert.Equal([-1, 1, 512], runner.OutputMetadata["logits"].Dimensions);
        Assert.Equal([-1, 1, -1], runner.InputMetadata[LlamaOnnxExporter.LastPositionInput].Dimensions);
        Assert.Equal([-1, -1, 512], exported.OutputMetadata["logits"].Dimensions);
        Assert.DoesNotContain(LlamaOnnxExporter.LastPositionInput, exported.InputMetadata.Keys);
    }

    [Fact]
    public void A_past_grown_one_position_at_a_time_gives_the_same_logits_as_the_runner_bit_for_bit()
    {
        int[] prompt = [1, 403, 407, 261, 378];
        using var session = new InferenceSession(Export());
        int layers = 5, kvHeads = 4, hd = 8;
        var pastKeys = Enumerable.Range(0, layers).Select(_ => Array.Empty<float>()).ToArray();
        var pastValues = Enumerable.Range(0, layers).Select(_ => Array.Empty<float>()).ToArray();
        float[] optimumLogits = [];
        // Optimum style: one token per call, past = the previous present, no padding anywhere.
        for (int pos = 0; pos < prompt.Length; pos++)
        {
            var inputs = new Dictionary<string, OrtValue>
            {
                ["input_ids"] = OrtValue.CreateTensorValueFromMemory(new long[] { prompt[pos] }, [1, 1]),
                ["attention_mask"] = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, pos + 1).ToArray(), [1, pos + 1]),
                ["position_ids"] = OrtValue.CreateTensorValueFromMemory(new long[] { pos }, [1, 1]),
            };
            for (int l = 0; l < layers; l++)
            {
                inputs[$"past_key_values.{l}.key"] = OrtValue.CreateTensorValueFromMemory(pastKeys[l], [1, kvHeads, pos, hd]);
                inputs[$"past_key_values.{l}.value"] = OrtValue.CreateTensorValueFromMemory(pastValues[l], [1, kvHeads, pos, hd]);
            }
            var names = new[] { "logits" }.Concat(Enumerable.Range(0, layers).SelectMany(l => new[] { $"present.{l}.key", $"present.{l}.value" })).ToArray();
            using var run = new RunOptions();
            using var outputs = session.Run(run, inputs.Keys.ToArray(), inputs.Values.ToArray(), names);
            optimumLogits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
            for (int l = 0; l < layers; l++)
            {
                pastKeys[l] = outputs[1 + 2 * l].GetTensorDataAsSpan<float>().ToArray();
                pastValues[l] = outputs[2 + 2 * l].GetTensorDataAsSpan<float>().ToArray();
            }
            foreach (var v in inputs.Values) v.Dispose();
        }

        // The runner: the same tokens one at a time, past padded to whole blocks.
        using var model = DecoderModel.Load(OnnxModelCache.GetOrConvert(ModelSource.Detect(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")), null, AttentionKernel.Blocks));
        using var cache = new KvCache(model.Config);
        var runnerLogits = new float[512];
        foreach (var token in prompt) model.Step([new SequenceStep(cache, new[] { token })], new StepWorkspace(), runnerLogits);

        Assert.True(optimumLogits.Select(BitConverter.SingleToInt32Bits).SequenceEqual(runnerLogits.Select(BitConverter.SingleToInt32Bits)));
    }

    private string Export()
    {
        var path = Path.Combine(_dir, "model.onnx");
        if (!File.Exists(path)) LlamaOnnxExporter.Write(Llama2Checkpoint.Read(Path.Combine(RepoPaths.ModelDir, "stories260K.bin")), path, optimumOutputs: true);
        return path;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
