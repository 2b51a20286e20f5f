using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Models;

/// <summary>Converts a model path through the real loader and runs tokens through the runner.</summary>
internal static class ModelRun
{
    /// <summary>Logits [positions][vocab] for <paramref name="tokens"/> fed one at a time (each row from its own step).</summary>
    public static float[][] StepwiseLogits(string modelPath, string cacheDirectory, IReadOnlyList<int> tokens, int? maxContext = null,
        AttentionKernel attention = AttentionKernel.GroupQuery)
    {
        var onnx = OnnxModelCache.GetOrConvert(ModelSource.Detect(modelPath), maxContext, attention, cacheDirectory);
        using var model = DecoderModel.Load(onnx, new RunnerOptions { IntraOpThreads = 1 });
        using var cache = new KvCache(model.Config);
        var ws = new StepWorkspace();
        var result = new float[tokens.Count][];
        for (int i = 0; i < tokens.Count; i++)
        {
            result[i] = new float[model.Config.VocabSize];
            model.Step([new SequenceStep(cache, new[] { tokens[i] })], ws, result[i]);
        }
        return result;
    }

    public static int[] Tokens(int count, int vocab, int seed)
    {
        var tokens = new int[count];
        ulong s = (ulong)seed * 0x9E3779B97F4A7C15UL + 11;
        for (int i = 0; i < count; i++)
        {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            tokens[i] = (int)(s % (ulong)vocab);
        }
        return tokens;
    }

    public static bool BitIdentical(float[][] a, float[][] b) =>
        a.Length == b.Length && a.Zip(b).All(p => p.First.Select(BitConverter.SingleToInt32Bits).SequenceEqual(p.Second.Select(BitConverter.SingleToInt32Bits)));

    /// <summary>Largest |model − reference| over all positions, relative to the largest |reference| logit.</summary>
    public static double RelativeError(float[][] model, double[][] reference)
    {
        double maxDiff = 0, scale = 0;
        for (int p = 0; p < model.Length; p++)
            for (int i = 0; i < model[p].Length; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(model[p][i] - reference[p][i]));
                scale = Math.Max(scale, Math.Abs(reference[p][i]));
            }
        return maxDiff / scale;
    }
}
