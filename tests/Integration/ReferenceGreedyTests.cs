using System.Text.Json;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

public sealed class ReferenceGreedyTests
{
    public static TheoryData<int> Records()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < File.ReadAllLines(Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl")).Length; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void Greedy_decoding_reproduces_the_llama2c_reference_ids(int record)
    {
        var line = File.ReadAllLines(Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl"))[record];
        using var doc = JsonDocument.Parse(line);
        var expectedPromptIds = doc.RootElement.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var promptIds = SharedModel.Instance.Tokenizer.Encode(doc.RootElement.GetProperty("prompt").GetString()!, addSpecial: true).ToArray();
        Assert.Equal(expectedPromptIds, promptIds);
        var expected = doc.RootElement.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        var onnx = OnnxModelCache.GetOrConvert(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"));
        using var model = DecoderModel.Load(onnx);
        using var cache = new KvCache(model.Config);
        var ws = new StepWorkspace();
        var logits = new float[model.Config.VocabSize];
        var produced = new List<int>();
        model.Step([new SequenceStep(cache, promptIds)], ws, logits);
        int maxTokens = 257 - promptIds.Length;
        for (int i = 0; i < maxTokens; i++)
        {
            int next = ArgMax(logits);
            produced.Add(next);
            if (next == 1 || cache.Length >= model.Config.SeqLen) break;
            if (i + 1 < maxTokens) model.Step([new SequenceStep(cache, new[] { next })], ws, logits);
        }
        Assert.Equal(expected, produced);
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
