using FsCheck;
using FsCheck.Fluent;
using Pipeline.Inference.Runtime;
using Pipeline.Properties.Scheduling;

namespace Pipeline.Properties.Cuda;

/// <summary>
/// P6 and P1 on a model of the caller's choosing (the 110M shape on CUDA, on the GPU machine):
/// run by the long-run console (<c>Pipeline.LongRun P6cuda|P1cuda MODEL</c>), never by CI, which
/// has no GPU. The model's own batch shapes apply (batch-invariant on CUDA by default).
/// </summary>
public static class CudaProperties
{
    /// <summary>A row of a call: its cached past, and the tokens it feeds.</summary>
    public sealed record Row(int Past, int Fed, int TokenSeed)
    {
        public override string ToString() => $"(past {Past}, feeds {Fed})";
    }

    /// <summary>
    /// P6 per kind of call: a decode call (every row feeds one token) or a prefill call (rows feed
    /// chunks of up to one block) gives each row the bits of the same kind of call on that row alone.
    /// </summary>
    public static void P6(string modelDirectory, bool cuda, string? shapes, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(log);
        using var loaded = LoadedModel.Load(modelDirectory, Options(cuda, shapes));
        var model = loaded.Decoder;
        log($"P6 on {model.ExecutionProvider} {model.ProviderFallbackReason}, batch shapes {model.Shapes}, context {model.Config.SeqLen}, decode attention {model.ResidentAttention ?? "staged"}");
        int maxPast = model.Config.SeqLen - model.AttentionBlock - 1;
        // Past 0 often: a prefill call of first chunks runs its own graph (the float16 one, beside float16 decode).
        var rows = (from past in Gen.Frequency((1, Gen.Constant(0)), (3, Gen.Choose(0, 140)), (1, Gen.Choose(140, maxPast)))
                    from fed in Gen.Choose(1, model.AttentionBlock)
                    from seed in Gen.Choose(0, 1_000_000)
                    select new Row(past, fed, seed))
            .ArrayOf().Where(r => r.Length is >= 1 and <= 32).ToArbitrary();
        int ragged = 0, multiBlock = 0, decodeCalls = 0, prefillCalls = 0, firstChunkCalls = 0;
        var sizes = new HashSet<int>();
        var property = Prop.ForAll(rows, Gen.Elements(StepKind.Decode, StepKind.Prefill).ToArbitrary(), (batch, kind) =>
        {
            if (kind == StepKind.Decode) batch = batch.Select(r => r with { Fed = 1 }).ToArray();
            sizes.Add(batch.Length);
            if (batch.Select(r => r.Past).Distinct().Count() > 1) ragged++;
            if (batch.Any(r => r.Past > 64) && batch.Any(r => r.Past <= 64)) multiBlock++;
            if (kind == StepKind.Decode) decodeCalls++; else prefillCalls++;
            if (kind == StepKind.Prefill && batch.Count(r => r.Past == 0) >= 2) firstChunkCalls++;
            int vocab = model.Config.VocabSize;
            var caches = batch.Select(r => StepInputs.Prefilled(model, r.Past, r.TokenSeed)).ToArray();
            var batchCaches = caches.Select(c => c.Clone()).ToArray();
            var fed = batch.Select(r => StepInputs.Tokens(r.TokenSeed + 1, r.Fed)).ToArray();
            var batchLogits = new float[batch.Length * vocab];
            // Workspaces are disposed: on CUDA each holds a resident pool in GPU memory.
            using (var workspace = new StepWorkspace())
                model.Step(batchCaches.Select((c, i) => new SequenceStep(c, fed[i])).ToArray(), workspace, batchLogits, kind);
            try
            {
                for (int i = 0; i < batch.Length; i++)
                {
                    var soloLogits = new float[vocab];
                    using (var workspace = new StepWorkspace())
                        model.Step([new SequenceStep(caches[i], fed[i])], workspace, soloLogits, kind);
                    if (!BatchingProperties.BitEqual(soloLogits, batchLogits.AsSpan(i * vocab, vocab)))
                        return false.Label($"{kind} row {i} of {batch.Length} {batch[i]}: logits differ");
                    for (int l = 0; l < model.Config.Layers; l++)
                        for (int h = 0; h < model.Config.KvHeads; h++)
                            if (!BatchingProperties.BitEqual(caches[i].Keys(l, h), batchCaches[i].Keys(l, h)) || !BatchingProperties.BitEqual(caches[i].Values(l, h), batchCaches[i].Values(l, h)))
                                return false.Label($"{kind} row {i} of {batch.Length} {batch[i]}: cache differs");
                }
                return true.ToProperty();
            }
            finally
            {
                foreach (var c in caches.Concat(batchCaches)) c.Dispose();
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(PropertyBudget.Cases(60)).WithQuietOnSuccess(true), property);
        log($"P6 explored: {sizes.Count} batch sizes, {ragged} ragged, {multiBlock} mixing one-block and multi-block pasts, {decodeCalls} decode and {prefillCalls} prefill calls ({firstChunkCalls} with several first chunks)");
        if (!(sizes.Count >= 10 && ragged >= 20 && multiBlock >= 10 && decodeCalls >= 15 && prefillCalls >= 15 && firstChunkCalls >= 5))
            throw new InvalidOperationException("P6 explored too little");
    }

    /// <summary>P1 through the real pipeline on this model: every completed request has the ids and logits of its solo run.</summary>
    public static void P1(string modelDirectory, bool cuda, string? shapes, Action<string> log, bool cudaGraph = false)
    {
        ArgumentNullException.ThrowIfNull(log);
        var loaded = LoadedModel.Load(modelDirectory, Options(cuda, shapes) with { CudaGraph = cudaGraph ? true : null });
        log($"P1 on {loaded.Decoder.ExecutionProvider} {loaded.Decoder.ProviderFallbackReason}, batch shapes {loaded.Decoder.Shapes}, pasts {loaded.Decoder.ResidentKv ?? "staged"}{(loaded.Decoder.CudaGraph ? ", CUDA graphs" : "")}, decode attention {loaded.Decoder.ResidentAttention ?? "staged"}");
        try
        {
            // Fewer cases than CI's P1 (30): each runs every request solo too, and a CUDA step with host-staged pasts is slow.
            PipelineProperties.P1On(ScenarioRunner.RealOn(loaded), cases: 10, log);
        }
        finally
        {
            loaded.Dispose();
        }
    }

    /// <summary>
    /// Decode over the resident pool (pasts in GPU memory, new positions written in place) against
    /// decode with the pasts staged from the host, same shapes, same provider: continuous batching
    /// over many steps, bit for bit (<see cref="ResidentDecodeCheck"/>).
    /// </summary>
    public static void Resident(string modelDirectory, bool cuda, string? shapes, Action<string> log, bool cudaGraph = false)
    {
        ArgumentNullException.ThrowIfNull(log);
        using var resident = LoadedModel.Load(modelDirectory, Options(cuda, shapes) with { ResidentKv = true, CudaGraph = cudaGraph });
        using var staged = LoadedModel.Load(modelDirectory, Options(cuda, shapes) with { ResidentKv = false });
        log($"resident vs staged on {resident.Decoder.ExecutionProvider} {resident.Decoder.ProviderFallbackReason}, batch shapes {resident.Decoder.Shapes}, pool in {resident.Decoder.ResidentKv} memory{(resident.Decoder.CudaGraph ? ", CUDA graphs" : "")}");
        int rows = resident.Decoder.Shapes.DecodeRows;
        for (int seed = 1; seed <= 2; seed++)
        {
            var explored = ResidentDecodeCheck.Run(resident.Decoder, staged.Decoder, sequences: rows * 2, steps: 60, seed);
            log($"seed {seed}: identical; {explored}");
            if (explored.Parts < 2 || explored.Rejoins < 5 || explored.Uploads <= explored.Sequences)
                throw new InvalidOperationException("the resident check explored too little");
        }
    }

    /// <summary>
    /// Decode over the resident pool against each sequence decoding alone in a pool of its own, same
    /// model: for a resident graph that differs from the staged one (the float16 GroupQueryAttention
    /// graph, <c>PIPELINE_QUANTIZE=f16</c>), where <see cref="Resident"/> has nothing to compare with.
    /// </summary>
    public static void ResidentSolo(string modelDirectory, bool cuda, string? shapes, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(log);
        using var resident = LoadedModel.Load(modelDirectory, Options(cuda, shapes) with { ResidentKv = true });
        log($"resident batched vs resident alone on {resident.Decoder.ExecutionProvider} {resident.Decoder.ProviderFallbackReason}, batch shapes {resident.Decoder.Shapes}, pool in {resident.Decoder.ResidentKv} memory{(resident.Decoder.CudaGraph ? ", CUDA graphs" : "")}, decode attention {resident.Decoder.ResidentAttention}");
        int rows = resident.Decoder.Shapes.DecodeRows;
        for (int seed = 1; seed <= 2; seed++)
        {
            var explored = ResidentDecodeCheck.RunAgainstSolo(resident.Decoder, sequences: rows * 2, steps: 60, seed);
            log($"seed {seed}: identical; {explored}");
            if (explored.Parts < 2 || explored.Rejoins < 5 || explored.Uploads <= explored.Sequences)
                throw new InvalidOperationException("the resident check explored too little");
        }
    }

    // PIPELINE_QUANTIZE (none, q8, q4, f16) picks the weights the model is converted with: f16 for CUDA's tensor cores.
    private static RunnerOptions Options(bool cuda, string? shapes) => new()
    {
        UseCuda = cuda,
        Quantize = Environment.GetEnvironmentVariable("PIPELINE_QUANTIZE") is { Length: > 0 } q
            ? Enum.Parse<Pipeline.Inference.Onnx.WeightQuantization>(q, ignoreCase: true) : default,
        Shapes = shapes is null ? null : BatchShapes.Parse(shapes, DecoderModel.CudaShapes),
    };
}
