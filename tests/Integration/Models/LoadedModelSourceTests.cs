using System.Text.Json;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Models;

/// <summary>LoadedModel over the new sources: weights and tokenizer from the same Hugging Face folder or GGUF file.</summary>
public sealed class LoadedModelSourceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pipeline-loaded-").FullName;

    [Fact]
    public void A_gguf_file_alone_loads_with_its_own_tokenizer_and_greedy_decodes_the_reference_start()
    {
        var gguf = Path.Combine(RepoPaths.Root, "tests", "fixtures", "models", "stories260k", "stories260K-f32.gguf");
        using var model = LoadedModel.Load(gguf, new RunnerOptions { IntraOpThreads = 1 }, Path.Combine(_dir, "cache"));
        using var doc = JsonDocument.Parse(File.ReadAllLines(Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl"))[0]);
        var expectedPrompt = doc.RootElement.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var expected = doc.RootElement.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).Take(40).ToArray();

        var prompt = model.Tokenizer.Encode(doc.RootElement.GetProperty("prompt").GetString()!, addSpecial: true).ToArray();
        Assert.Equal(expectedPrompt, prompt);
        Assert.Equal(128, model.Decoder.Config.SeqLen); // the GGUF's own context_length
        Assert.Equal(expected, Greedy(model.Decoder, prompt, expected.Length));
    }

    [Fact]
    public void A_hugging_face_folder_loads_with_its_tokenizer_json()
    {
        var spec = new TinySpec { Architecture = "Qwen2ForCausalLM", Vocab = 32000, Dim = 32, Layers = 1, WeightScale = 0.1f };
        var folder = TinyModelFiles.WriteHuggingFace(new TinyModel(spec), Path.Combine(_dir, "hf"), "BF16", eos: [2, 31999]);
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), "{\"eos_token_id\": 31998}");
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", "spm-bpe-32k", f), Path.Combine(folder, f));
        using var model = LoadedModel.Load(folder, new RunnerOptions { IntraOpThreads = 1, MaxContext = 64 }, Path.Combine(_dir, "cache"));
        Assert.Equal(64, model.Decoder.Config.SeqLen);
        // The tokenizer's eos and every eos_token_id of config.json and generation_config.json stop.
        Assert.Contains(2, model.Tokenizer.EndIds);
        Assert.Contains(31999, model.Tokenizer.EndIds);
        Assert.Contains(31998, model.Tokenizer.EndIds);
        var ids = model.Tokenizer.Encode("Hello world", addSpecial: true).ToArray();
        Assert.NotEmpty(ids);
        Assert.Equal(3, Greedy(model.Decoder, ids, 3).Length);
    }

    private static int[] Greedy(DecoderModel decoder, int[] prompt, int count)
    {
        using var cache = new KvCache(decoder.Config);
        var ws = new StepWorkspace();
        var logits = new float[decoder.Config.VocabSize];
        decoder.Step([new SequenceStep(cache, prompt)], ws, logits);
        var produced = new List<int>();
        for (int i = 0; i < count; i++)
        {
            int next = 0;
            for (int v = 1; v < logits.Length; v++) if (logits[v] > logits[next]) next = v;
            produced.Add(next);
            if (i + 1 < count) decoder.Step([new SequenceStep(cache, new[] { next })], ws, logits);
        }
        return produced.ToArray();
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
