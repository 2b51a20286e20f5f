using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;
using Pipeline.Testing;

namespace Pipeline.Properties.Cuda;

/// <summary>
/// Which decode row counts give a row the very bits the default 32-row call gives it, on the
/// resident float16 graph (issue 10: a smaller call for a lane of few rows would cut what the
/// invariance costs at concurrency 1, but only a call whose rows come out as the 32-row call's may
/// stand in for it). Loads the model once per row count, decodes the same prefilled rows and
/// compares each row's logits with the 32-row call's, bit for bit.
/// </summary>
public static class ResidentShapeProbe
{
    /// <param name="cuda">False runs the same comparison on the CPU's host-memory pool with float32 weights (a smoke test of the probe itself).</param>
    public static void Run(string modelDirectory, Action<string> log, bool cuda = true)
    {
        ArgumentNullException.ThrowIfNull(log);
        int[] counts = [32, 1, 2, 3, 4, 8, 12, 16, 24, 31, 33, 48, 64];
        int[] pasts = [100, 37, 260];
        KvCache[]? prefilled = null;
        float[][]? reference = null;
        foreach (int n in counts)
        {
            var options = new RunnerOptions
            {
                UseCuda = cuda,
                Quantize = cuda ? WeightQuantization.F16 : WeightQuantization.None,
                ResidentKv = true,
                CudaGraph = false,
                Shapes = BatchShapes.Parse($"decode={n},prefill=8,block,context", DecoderModel.CudaShapes),
            };
            using var model = LoadedModel.Load(modelDirectory, options);
            var decoder = model.Decoder;
            int vocab = decoder.Config.VocabSize;
            prefilled ??= [.. pasts.Select((past, i) => StepInputs.Prefilled(decoder, past, seed: 11 + i))];
            // Each row alone in the call, then up to three rows together: within one shape they must agree.
            var alone = new float[pasts.Length][];
            for (int r = 0; r < pasts.Length; r++) alone[r] = Decode(decoder, [prefilled[r]], [5 + r], vocab)[0];
            int together = Math.Min(n, pasts.Length);
            var batched = Decode(decoder, prefilled.Take(together).ToArray(), [.. Enumerable.Range(5, together)], vocab);
            bool within = batched.Select((row, r) => row.AsSpan().SequenceEqual(alone[r])).All(same => same);
            reference ??= alone;
            var differing = Enumerable.Range(0, pasts.Length).Where(r => !alone[r].AsSpan().SequenceEqual(reference[r])).ToList();
            double largest = differing.Count == 0 ? 0 : differing.Max(r => alone[r].Zip(reference[r], (a, b) => Math.Abs((double)a - b)).Max());
            log($"decode={n}: {(differing.Count == 0 ? "same bits as decode=32" : $"differs from decode=32 in rows {string.Join(',', differing)} (largest difference {largest:G3})")}; "
                + $"{together} rows together = alone: {(within ? "yes" : "NO")}; {decoder.ExecutionProvider}, attention {decoder.ResidentAttention}");
        }
        foreach (var cache in prefilled ?? []) cache.Dispose();
    }

    /// <summary>One decode call feeding cache i the token <paramref name="tokens"/>[i], on copies; each row's logits.</summary>
    private static float[][] Decode(DecoderModel decoder, KvCache[] caches, int[] tokens, int vocab)
    {
        var copies = caches.Select(c => c.Clone()).ToArray();
        try
        {
            using var workspace = new StepWorkspace();
            var logits = new float[copies.Length * vocab];
            decoder.Step(copies.Select((c, i) => new SequenceStep(c, new[] { tokens[i] })).ToArray(), workspace, logits);
            return [.. Enumerable.Range(0, copies.Length).Select(r => logits.AsSpan(r * vocab, vocab).ToArray())];
        }
        finally
        {
            foreach (var c in copies) c.Dispose();
        }
    }
}
