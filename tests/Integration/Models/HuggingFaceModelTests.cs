using Pipeline.Inference.Models.Sources;

namespace Pipeline.Integration.Models;

/// <summary>
/// Hugging Face folders written here with random weights, loaded through the real loader, the
/// converter and ONNX Runtime, against <see cref="HuggingFaceReference"/>.
/// </summary>
public sealed class HuggingFaceModelTests : IDisposable
{
    private const double Tolerance = 2e-5;
    private readonly string _dir = Directory.CreateTempSubdirectory("pipeline-hf-").FullName;

    public static TheoryData<string, string, int> Architectures() => new()
    {
        { "LlamaForCausalLM", "F32", 1 },
        { "MistralForCausalLM", "BF16", 2 },
        { "Qwen2ForCausalLM", "F16", 3 },
        { "Qwen3ForCausalLM", "BF16", 1 },
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Safetensors_logits_match_the_independent_rotate_half_reference_within_float_tolerance(string architecture, string dtype, int shards)
    {
        // 70 positions cross the 64-key attention block; theta 500000 and GQA throughout; Qwen3 with
        // a head_dim other than dim / heads.
        var spec = new TinySpec { Architecture = architecture, HeadDim = architecture == "Qwen3ForCausalLM" ? 16 : 0 };
        var model = new TinyModel(spec);
        var folder = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, architecture), dtype, shards);
        var tokens = ModelRun.Tokens(70, spec.Vocab, 3);

        var logits = ModelRun.StepwiseLogits(folder, Path.Combine(_dir, "cache"), tokens);
        var reference = new HuggingFaceReference(model);
        var expected = tokens.Select(reference.Next).ToArray();

        Assert.True(ModelRun.RelativeError(logits, expected) < Tolerance, $"relative error {ModelRun.RelativeError(logits, expected):E2}");
        // The check can see a RoPE layout mistake: the interleaved rotation on these weights is far off.
        var wrong = new HuggingFaceReference(model, interleavedRope: true);
        var wrongLogits = tokens.Select(wrong.Next).ToArray();
        Assert.True(ModelRun.RelativeError(logits, wrongLogits) > 100 * Tolerance, "the reference cannot tell the RoPE layouts apart");
    }

    [Fact]
    public void Llama3_rope_scaling_matches_the_reference_and_differs_from_unscaled()
    {
        // original context 64 with wavelengths spread by theta 10000 puts frequencies in all three llama3 bands.
        var spec = new TinySpec { RopeTheta = 10000f, HeadDim = 0, Dim = 64, Heads = 4, KvHeads = 2,
            RopeScalingJson = "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}" };
        var model = new TinyModel(spec);
        var folder = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "llama3"));
        var tokens = ModelRun.Tokens(40, spec.Vocab, 5);
        var logits = ModelRun.StepwiseLogits(folder, Path.Combine(_dir, "cache"), tokens);

        var reference = new HuggingFaceReference(model, llama3Factor: 8, lowFreq: 1, highFreq: 4, originalContext: 64);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(reference.Next).ToArray()) < Tolerance);
        var unscaled = new HuggingFaceReference(model);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(unscaled.Next).ToArray()) > 100 * Tolerance);
    }

    [Fact]
    public void Linear_rope_scaling_matches_the_reference()
    {
        var spec = new TinySpec { RopeScalingJson = "{\"type\": \"linear\", \"factor\": 4.0}" };
        var model = new TinyModel(spec);
        var folder = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "linear"));
        var tokens = ModelRun.Tokens(20, spec.Vocab, 9);
        var logits = ModelRun.StepwiseLogits(folder, Path.Combine(_dir, "cache"), tokens);
        var reference = new HuggingFaceReference(model, linearFactor: 4);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(reference.Next).ToArray()) < Tolerance);
    }

    [Fact]
    public void A_tied_classifier_is_the_embedding()
    {
        var spec = new TinySpec { Tied = true, Architecture = "Qwen2ForCausalLM" };
        var model = new TinyModel(spec);
        var folder = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "tied"));
        var tokens = ModelRun.Tokens(10, spec.Vocab, 1);
        var logits = ModelRun.StepwiseLogits(folder, Path.Combine(_dir, "cache"), tokens);
        var reference = new HuggingFaceReference(model);
        Assert.True(ModelRun.RelativeError(logits, tokens.Select(reference.Next).ToArray()) < Tolerance);
    }

    [Fact]
    public void The_context_cap_bounds_the_graph_and_keeps_the_logits()
    {
        var model = new TinyModel(new TinySpec());
        var folder = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "capped"));
        var tokens = ModelRun.Tokens(12, model.Spec.Vocab, 2);
        var full = ModelRun.StepwiseLogits(folder, Path.Combine(_dir, "cache"), tokens);
        var capped = ModelRun.StepwiseLogits(folder, Path.Combine(_dir, "cache"), tokens, maxContext: 16);
        Assert.True(ModelRun.BitIdentical(full, capped));
        Assert.Equal(16, ModelSource.Detect(folder).Inspect(maxContext: 16).ContextLength);
        Assert.Equal(160, ModelSource.Detect(folder).Inspect(maxContext: 1000).ContextLength);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
