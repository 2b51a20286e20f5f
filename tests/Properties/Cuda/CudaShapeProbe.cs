using System.Security.Cryptography;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties.Cuda;

/// <summary>
/// Measures, on whatever provider the model runs on, which call shapes change a row's bits: one
/// target row's logits and new keys/values are computed under many batch compositions (rows,
/// the past's stride, padded new tokens) and grouped by their exact bits. Run by the long-run
/// console on the GPU machine (<c>Pipeline.LongRun probe MODEL</c>); not a test.
/// </summary>
public static class CudaShapeProbe
{
    public static void Run(string modelDirectory, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(log);
        using var loaded = LoadedModel.Load(modelDirectory, new RunnerOptions { UseCuda = true, Shapes = BatchShapes.Exact });
        var model = loaded.Decoder;
        log($"provider {model.ExecutionProvider} {model.ProviderFallbackReason}; context {model.Config.SeqLen}, block {model.AttentionBlock}");
        int context = model.Config.SeqLen;

        // Decode: the target (past 100) beside R-1 others whose pasts keep the stride at 128, then
        // R = 8 and 32 with one other row long enough to widen the stride.
        var decode = new List<(string Config, string Bits)>();
        void DecodeCase(string name, int rows, int otherPast, int targetRow, BatchShapes shapes)
        {
            var target = StepInputs.Prefilled(model, past: 100, seed: 7);
            var others = Enumerable.Range(0, rows - 1).Select(i => StepInputs.Prefilled(model, past: i == 0 ? otherPast : 10 + (i * 37) % 90, seed: 100 + i)).ToList();
            var all = others.ToList();
            all.Insert(Math.Min(targetRow, all.Count), target);
            var steps = all.Select((c, i) => new SequenceStep(c, ReferenceEquals(c, target) ? new[] { 42 } : new[] { 5 + i })).ToArray();
            var logits = new float[steps.Length * model.Config.VocabSize];
            model.Step(steps, new StepWorkspace(), logits, StepKind.Decode, shapes);
            int t = all.IndexOf(target);
            decode.Add((name, Digest(logits.AsSpan(t * model.Config.VocabSize, model.Config.VocabSize), target, model)));
            foreach (var c in all) c.Dispose();
        }
        foreach (int r in new[] { 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 48, 64 })
            DecodeCase($"rows {r,2}, stride 128", r, 60, 0, BatchShapes.Exact);
        DecodeCase("rows  8, stride 128, target row 5", 8, 60, 5, BatchShapes.Exact);
        foreach (int past in new[] { 150, 200, 260, 330, 400, context - 2 })
        {
            DecodeCase($"rows  8, other past {past}", 8, past, 0, BatchShapes.Exact);
            DecodeCase($"rows 32, other past {past}", 32, past, 0, BatchShapes.Exact);
        }
        DecodeCase("rows  1, past to context", 1, 0, 0, BatchShapes.Exact with { PastToContext = true });
        DecodeCase("rows  1 padded to 32, past to context", 1, 0, 0, new BatchShapes(32, 0, false, true));
        DecodeCase("rows  5 padded to 32, past to context", 5, 60, 0, new BatchShapes(32, 0, false, true));
        DecodeCase("rows 32, past to context", 32, 60, 0, new BatchShapes(32, 0, false, true));
        DecodeCase("rows 32 (one past 400), past to context", 32, 400, 0, new BatchShapes(32, 0, false, true));
        DecodeCase("rows  1 padded to 64, past to context", 1, 0, 0, new BatchShapes(64, 0, false, true));
        DecodeCase("rows 40 padded to 64, past to context", 40, 60, 0, new BatchShapes(64, 0, false, true));
        Report("decode (target: past 100, feeds 1)", decode, log);

        // Prefill: the target feeds 30 tokens after a past of 64, beside others feeding 1..64.
        var prefill = new List<(string Config, string Bits)>();
        void PrefillCase(string name, int rows, int otherFeed, BatchShapes shapes)
        {
            var target = StepInputs.Prefilled(model, past: 64, seed: 9);
            var others = Enumerable.Range(0, rows - 1).Select(i => StepInputs.Prefilled(model, past: 64 * (i % 3), seed: 200 + i)).ToList();
            var all = new List<KvCache> { target };
            all.AddRange(others);
            var steps = all.Select((c, i) => new SequenceStep(c, StepInputs.Tokens(300 + i, i == 0 ? 30 : otherFeed))).ToArray();
            var logits = new float[steps.Length * model.Config.VocabSize];
            model.Step(steps, new StepWorkspace(), logits, StepKind.Prefill, shapes);
            prefill.Add((name, Digest(logits.AsSpan(0, model.Config.VocabSize), target, model)));
            foreach (var c in all) c.Dispose();
        }
        foreach (int r in new[] { 1, 2, 3, 4, 8 })
            foreach (int feed in new[] { 1, 30, 64 })
                PrefillCase($"rows {r}, others feed {feed,2}", r, feed, BatchShapes.Exact);
        foreach (int r in new[] { 1, 3, 8 })
            foreach (int feed in new[] { 1, 64 })
            {
                PrefillCase($"rows {r} padded to 8, new to block, others feed {feed,2}", r, feed, new BatchShapes(0, 8, true, false));
                PrefillCase($"rows {r} padded to 8, new to block, past to context, others feed {feed,2}", r, feed, new BatchShapes(0, 8, true, true));
            }
        Report("prefill (target: past 64, feeds 30)", prefill, log);
    }

    private static void Report(string title, List<(string Config, string Bits)> cases, Action<string> log)
    {
        log($"== {title}: {cases.Select(c => c.Bits).Distinct().Count()} distinct results over {cases.Count} configurations");
        var classes = cases.Select(c => c.Bits).Distinct().Select((bits, i) => (bits, i)).ToDictionary(x => x.bits, x => (char)('A' + x.i));
        foreach (var (config, bits) in cases) log($"  {classes[bits]}  {config}");
    }

    /// <summary>A digest of the target's logits and of the keys and values its call appended.</summary>
    private static string Digest(ReadOnlySpan<float> logits, KvCache cache, DecoderModel model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(logits));
        for (int l = 0; l < model.Config.Layers; l++)
            for (int h = 0; h < model.Config.KvHeads; h++)
            {
                hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cache.Keys(l, h)));
                hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cache.Values(l, h)));
            }
        return Convert.ToHexString(hash.GetHashAndReset())[..12];
    }
}
