using System.Text.Json;
using Pipeline.Inference.Models;
using Pipeline.Inference.Models.Gguf;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Models;

/// <summary>GGUF files: llama.cpp's own stories260K, and tiny random models written here.</summary>
public sealed class GgufModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pipeline-gguf-").FullName;

    private static string Stories260KGguf => Path.Combine(RepoPaths.Root, "tests", "fixtures", "models", "stories260k", "stories260K-f32.gguf");

    [Fact]
    public void The_llama_cpp_stories260K_gguf_greedy_decodes_every_reference_record()
    {
        // llama.cpp's llama2.c converter states context_length 128; run.c decoded the reference to 256
        // positions, so the context is extended as llama.cpp's -c 256 would.
        var onnx = OnnxModelCache.GetOrConvert(ModelSource.Detect(Stories260KGguf), null, Path.Combine(_dir, "cache"), extendContextTo: 256);
        using var model = DecoderModel.Load(onnx, new RunnerOptions { IntraOpThreads = 1 });
        var lines = File.ReadAllLines(Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl"));
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var prompt = doc.RootElement.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var expected = doc.RootElement.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            using var cache = new KvCache(model.Config);
            var ws = new StepWorkspace();
            var logits = new float[model.Config.VocabSize];
            var produced = new List<int>();
            model.Step([new SequenceStep(cache, prompt)], ws, logits);
            int maxTokens = 257 - prompt.Length;
            for (int i = 0; i < maxTokens; i++)
            {
                int next = ArgMax(logits);
                produced.Add(next);
                if (next == 1 || cache.Length >= model.Config.SeqLen) break;
                if (i + 1 < maxTokens) model.Step([new SequenceStep(cache, new[] { next })], ws, logits);
            }
            Assert.Equal(expected, produced);
        }
    }

    [Fact]
    public void The_stories260K_gguf_and_the_llama2c_checkpoint_convert_to_bit_identical_logits()
    {
        var tokens = new[] { 1, 403, 407, 261, 378, 432, 383 };
        var fromGguf = ModelRun.StepwiseLogits(Stories260KGguf, Path.Combine(_dir, "cache"), tokens);
        var fromBin = ModelRun.StepwiseLogits(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"), Path.Combine(_dir, "cache"), tokens);
        Assert.True(ModelRun.BitIdentical(fromGguf, fromBin));
    }

    [Fact]
    public void The_stories260K_gguf_inspects_as_llama_with_its_tokenizer_and_config()
    {
        var info = ModelSource.Detect(Stories260KGguf).Inspect();
        Assert.Equal(ModelFormat.Gguf, info.Format);
        Assert.Equal("llama", info.Architecture);
        Assert.Equal(["F32"], info.DTypes);
        Assert.Equal(new LlamaConfig(64, 172, 5, 8, 4, 512, info.MaxContextLength, SharedClassifier: info.Config.SharedClassifier), info.Config with { RmsNormEpsilon = 1e-5f });
        Assert.StartsWith("GGUF llama", info.TokenizerKind, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(TinyModelFiles.GgmlF32)]
    [InlineData(TinyModelFiles.GgmlF16)]
    public void Gguf_llama_with_interleaved_q_k_matches_the_rotate_half_reference(uint matrixType)
    {
        var model = new TinyModel(new TinySpec());
        var path = TinyModelFiles.WriteGguf(model, Path.Combine(_dir, $"tiny-{matrixType}.gguf"), matrixType);
        var tokens = ModelRun.Tokens(30, model.Spec.Vocab, 4);
        var logits = ModelRun.StepwiseLogits(path, Path.Combine(_dir, "cache"), tokens);
        var reference = new HuggingFaceReference(model);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(reference.Next).ToArray()) < 2e-5);
    }

    [Theory]
    [InlineData("Qwen2ForCausalLM")]
    [InlineData("Qwen3ForCausalLM")]
    public void Gguf_qwen_models_match_the_safetensors_folder_bit_for_bit(string architecture)
    {
        var model = new TinyModel(new TinySpec { Architecture = architecture, HeadDim = architecture == "Qwen3ForCausalLM" ? 16 : 0 });
        var gguf = TinyModelFiles.WriteGguf(model, Path.Combine(_dir, $"{architecture}.gguf"));
        var folder = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, architecture));
        var tokens = ModelRun.Tokens(20, model.Spec.Vocab, 8);
        Assert.True(ModelRun.BitIdentical(ModelRun.StepwiseLogits(gguf, Path.Combine(_dir, "cache"), tokens), ModelRun.StepwiseLogits(folder, Path.Combine(_dir, "cache"), tokens)));
    }

    [Fact]
    public void A_gguf_rope_freqs_tensor_applies_llama3_scaling_as_the_hugging_face_config_does()
    {
        // llama.cpp's converter turns rope_scaling llama3 into rope_freqs.weight: per-frequency divisors.
        var spec = new TinySpec { RopeTheta = 10000f, Dim = 64 };
        var model = new TinyModel(spec);
        int half = spec.Hd / 2;
        var factors = new float[half];
        for (int i = 0; i < half; i++)
        {
            double f = 1.0 / Math.Pow(spec.RopeTheta, 2.0 * i / spec.Hd), wavelen = 2 * Math.PI / f;
            double scaled = wavelen < 64 / 4.0 ? f : wavelen > 64 / 1.0 ? f / 8 : (1 - (64 / wavelen - 1) / 3) * f / 8 + (64 / wavelen - 1) / 3 * f;
            factors[i] = (float)(f / scaled);
        }
        var path = TinyModelFiles.WriteGguf(model, Path.Combine(_dir, "llama3.gguf"), extraTensors: [("rope_freqs.weight", factors, [half])]);
        var tokens = ModelRun.Tokens(40, spec.Vocab, 5);
        var logits = ModelRun.StepwiseLogits(path, Path.Combine(_dir, "cache"), tokens);
        var reference = new HuggingFaceReference(model, llama3Factor: 8, lowFreq: 1, highFreq: 4, originalContext: 64);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(reference.Next).ToArray()) < 2e-5);
        var unscaled = new HuggingFaceReference(model);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(unscaled.Next).ToArray()) > 2e-3);
    }

    [Fact]
    public void Q8_0_tensors_dequantize_as_ggml_does_and_the_model_stays_close_to_the_reference()
    {
        var model = new TinyModel(new TinySpec { Hidden = 64 });
        var path = TinyModelFiles.WriteGguf(model, Path.Combine(_dir, "q8.gguf"), TinyModelFiles.GgmlQ8_0);
        using (var source = GgufWeightSource.Open(path))
        {
            var original = model["model.layers.0.self_attn.v_proj.weight"];
            var loaded = source.Read(WeightRole.Wv, 0);
            // ggml: d = amax / 127 stored as fp16, q = round(x / d); dequantized q·d, bit for bit.
            for (int b = 0; b < original.Length / 32; b++)
            {
                float amax = original.AsSpan(b * 32, 32).ToArray().Max(MathF.Abs), d = amax / 127f, d16 = (float)(Half)d;
                for (int j = b * 32; j < b * 32 + 32; j++)
                {
                    float expected = (sbyte)MathF.Round(original[j] * (1f / d), MidpointRounding.AwayFromZero) * d16;
                    Assert.Equal(expected, loaded[j]);
                    Assert.True(MathF.Abs(original[j] - loaded[j]) <= 0.6f * d, $"element {j} is off by more than the quantization step allows");
                }
            }
        }
        var tokens = ModelRun.Tokens(10, model.Spec.Vocab, 6);
        var logits = ModelRun.StepwiseLogits(path, Path.Combine(_dir, "cache"), tokens);
        var reference = new HuggingFaceReference(model);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(reference.Next).ToArray()) < 0.05);
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
