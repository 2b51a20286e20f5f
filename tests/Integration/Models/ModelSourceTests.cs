using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Models;

/// <summary>Recognising model paths, describing them, keying their converted graphs, and refusing bad ones by name.</summary>
public sealed class ModelSourceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pipeline-sources-").FullName;

    [Fact]
    public void Detect_recognises_each_format_from_a_folder_or_a_file()
    {
        var model = new TinyModel(new TinySpec { RopeTheta = 10000f });
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"), shards: 2);
        var ggufFolder = Path.Combine(_dir, "gguf");
        Directory.CreateDirectory(ggufFolder);
        var gguf = TinyModelFiles.WriteGguf(model, Path.Combine(ggufFolder, "tiny.gguf"));
        var bin = TinyModelFiles.WriteLlama2c(model, Path.Combine(_dir, "llama2c"));

        Assert.Equal(ModelFormat.HuggingFace, ModelSource.Detect(hf).Format);
        Assert.Equal(ModelFormat.HuggingFace, ModelSource.Detect(Path.Combine(hf, "config.json")).Format);
        Assert.Equal(ModelFormat.Gguf, ModelSource.Detect(gguf).Format);
        Assert.Equal(gguf, ModelSource.Detect(ggufFolder).ModelPath);
        Assert.Equal(ModelFormat.Llama2c, ModelSource.Detect(Path.GetDirectoryName(bin)!).Format);
        Assert.Equal(ModelFormat.Llama2c, ModelSource.Detect(RepoPaths.ModelDir).Format);
    }

    [Fact]
    public void Inspect_reports_architecture_parameters_dtypes_context_tokenizer_template_and_end_tokens()
    {
        var spec = new TinySpec { Architecture = "Qwen3ForCausalLM", HeadDim = 16, MaxPositions = 4096 };
        var hf = TinyModelFiles.WriteHuggingFace(new TinyModel(spec), Path.Combine(_dir, "qwen3"), "BF16", eos: [5, 7]);
        File.WriteAllText(Path.Combine(hf, "generation_config.json"), "{\"eos_token_id\": [7, 9], \"bos_token_id\": 1}");
        File.Copy(Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", "qwen3", "tokenizer.json"), Path.Combine(hf, "tokenizer.json"));
        File.WriteAllText(Path.Combine(hf, "tokenizer_config.json"), "{\"chat_template\": \"{{ messages }}\"}");

        var info = ModelSource.Detect(hf).Inspect(maxContext: 1024);

        Assert.Equal(ModelFormat.HuggingFace, info.Format);
        Assert.Equal("qwen3", info.Architecture);
        Assert.Equal(["BF16"], info.DTypes);
        Assert.Equal(1024, info.ContextLength);
        Assert.Equal(4096, info.MaxContextLength);
        Assert.Equal("tokenizer.json (BPE, byte-level)", info.TokenizerKind);
        Assert.True(info.HasChatTemplate);
        Assert.Equal([5, 7, 9], info.EndTokenIds);
        Assert.True(info.Config.QkNorm);
        Assert.Equal(16, info.Config.HeadDim);
        // Parameters: exactly the elements of every tensor written.
        Assert.Equal(new TinyModel(spec).Tensors.Sum(t => t.Data.LongLength), info.ParameterCount);
    }

    [Fact]
    public void A_mistral_sliding_window_caps_the_context_where_full_attention_is_still_exact()
    {
        var spec = new TinySpec { Architecture = "MistralForCausalLM", MaxPositions = 32768 };
        var hf = TinyModelFiles.WriteHuggingFace(new TinyModel(spec), Path.Combine(_dir, "mistral"));
        File.WriteAllText(Path.Combine(hf, "config.json"), spec.ConfigJson().Replace("\"hidden_act\"", "\"sliding_window\": 4096, \"hidden_act\"", StringComparison.Ordinal));
        var info = ModelSource.Detect(hf).Inspect();
        Assert.Equal(4096, info.ContextLength);
        Assert.Equal(32768, info.MaxContextLength);
        Assert.Equal("mistral", info.Architecture);
    }

    [Fact]
    public void Inspect_of_the_embedded_llama2c_model_reads_only_its_header()
    {
        var info = ModelSource.Detect(RepoPaths.ModelDir).Inspect();
        Assert.Equal(ModelFormat.Llama2c, info.Format);
        Assert.Equal("llama", info.Architecture);
        Assert.Equal(512, info.ContextLength);
        Assert.Equal("llama2.c tok512.bin", info.TokenizerKind);
        Assert.False(info.HasChatTemplate);
    }

    [Fact]
    public void The_cache_key_changes_with_config_weights_and_context_and_is_stable_otherwise()
    {
        var model = new TinyModel(new TinySpec());
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"), shards: 2);
        var source = ModelSource.Detect(hf);
        var key = OnnxModelCache.CacheKey(source, null);
        Assert.Equal(key, OnnxModelCache.CacheKey(source, null));
        Assert.NotEqual(key, OnnxModelCache.CacheKey(source, 64));

        File.WriteAllText(Path.Combine(hf, "config.json"), model.Spec.ConfigJson().Replace("500000", "400000", StringComparison.Ordinal));
        var afterConfig = OnnxModelCache.CacheKey(source, null);
        Assert.NotEqual(key, afterConfig);

        // Rewrite one shard with one weight changed (same size): the content hash sees it.
        var shard = Path.Combine(hf, "model-00002-of-00002.safetensors");
        var bytes = File.ReadAllBytes(shard);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(shard, bytes);
        Assert.NotEqual(afterConfig, OnnxModelCache.CacheKey(source, null));
    }

    [Fact]
    public void A_large_weight_file_is_keyed_by_header_size_and_write_time_without_reading_it_all()
    {
        var model = new TinyModel(new TinySpec());
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"));
        // Grow the file past the full-hash limit with trailing bytes no tensor covers.
        var file = Path.Combine(hf, "model.safetensors");
        using (var s = new FileStream(file, FileMode.Append)) s.SetLength(OnnxModelCache.FullHashLimitBytes + 4096);
        var source = ModelSource.Detect(hf);
        var key = OnnxModelCache.CacheKey(source, null);
        // A change past the first megabyte with the write time restored is (by design) not seen...
        var time = File.GetLastWriteTimeUtc(file);
        using (var s = new FileStream(file, FileMode.Open)) { s.Position = s.Length - 10; s.WriteByte(1); }
        File.SetLastWriteTimeUtc(file, time);
        Assert.Equal(key, OnnxModelCache.CacheKey(source, null));
        // ...but any ordinary rewrite moves the write time, and the key changes.
        File.SetLastWriteTimeUtc(file, time.AddSeconds(1));
        Assert.NotEqual(key, OnnxModelCache.CacheKey(source, null));
    }

    [Fact]
    public void LoadedModel_loads_a_hugging_face_folder_that_carries_a_llama2c_tokenizer()
    {
        var model = new TinyModel(new TinySpec { Vocab = 512, RopeTheta = 10000f, Architecture = "Qwen2ForCausalLM" });
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"));
        File.Copy(Path.Combine(RepoPaths.ModelDir, "tok512.bin"), Path.Combine(hf, "tokenizer.bin"));
        using var loaded = LoadedModel.Load(hf, new RunnerOptions { MaxContext = 128 }, Path.Combine(_dir, "cache"));
        Assert.Equal(128, loaded.Decoder.Config.SeqLen);
        Assert.Equal("qwen2", loaded.Decoder.Config.Architecture);
        Assert.True(loaded.Decoder.Config.AttentionBias);
    }

    [Fact]
    public void Bad_models_are_refused_with_the_file_and_the_problem_named()
    {
        var model = new TinyModel(new TinySpec());
        var hf = TinyModelFiles.WriteHuggingFace(model, Path.Combine(_dir, "hf"));
        var config = Path.Combine(hf, "config.json");

        File.WriteAllText(config, model.Spec.ConfigJson().Replace("LlamaForCausalLM", "GPT2LMHeadModel", StringComparison.Ordinal));
        var e = Assert.Throws<InvalidDataException>(() => ModelSource.Detect(hf).Inspect());
        Assert.Contains("GPT2LMHeadModel", e.Message, StringComparison.Ordinal);

        File.WriteAllText(config, model.Spec.ConfigJson().Replace("\"hidden_size\": 32", "\"hidden_size\": 40", StringComparison.Ordinal));
        e = Assert.Throws<InvalidDataException>(() => Convert(hf));
        Assert.Contains("model.embed_tokens.weight", e.Message, StringComparison.Ordinal);

        File.WriteAllText(config, "{ not json");
        e = Assert.Throws<InvalidDataException>(() => ModelSource.Detect(hf).Inspect());
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);

        File.WriteAllText(config, model.Spec.ConfigJson());
        var weights = Path.Combine(hf, "model.safetensors");
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..200]);
        e = Assert.Throws<InvalidDataException>(() => ModelSource.Detect(hf).Inspect());
        Assert.Contains("model.safetensors", e.Message, StringComparison.Ordinal);

        File.WriteAllText(config, model.Spec.ConfigJson().Replace("\"rope_theta\"", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}, \"rope_theta\"", StringComparison.Ordinal));
        e = Assert.Throws<InvalidDataException>(() => ModelSource.Detect(hf).Inspect());
        Assert.Contains("yarn", e.Message, StringComparison.Ordinal);

        File.WriteAllText(config, model.Spec.ConfigJson().Replace("\"hidden_act\"", "\"attention_bias\": true, \"hidden_act\"", StringComparison.Ordinal));
        e = Assert.Throws<InvalidDataException>(() => ModelSource.Detect(hf).Inspect());
        Assert.Contains("attention_bias", e.Message, StringComparison.Ordinal);

        var empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        Assert.Throws<FileNotFoundException>(() => ModelSource.Detect(empty));
        var truncatedGguf = Path.Combine(_dir, "cut.gguf");
        File.WriteAllBytes(truncatedGguf, File.ReadAllBytes(TinyModelFiles.WriteGguf(model, Path.Combine(_dir, "whole.gguf")))[..100]);
        e = Assert.Throws<InvalidDataException>(() => ModelSource.Detect(truncatedGguf).Inspect());
        Assert.Contains("cut.gguf", e.Message, StringComparison.Ordinal);
    }

    private string Convert(string path) => OnnxModelCache.GetOrConvert(ModelSource.Detect(path), null, Path.Combine(_dir, "cache"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
