using System.Runtime.InteropServices;
using Pipeline.Actors.Scheduling;
using Pipeline.Inference.Tokenization;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Sampling;

namespace Pipeline.Benchmarks;

/// <summary>
/// One request generated alone through <see cref="DecoderModel.Step"/>, exactly as the pipeline
/// would feed it: prompt chunks ending on multiples of the attention block counted from position
/// 0, then one token per step, sampled with draw index = tokens generated so far and history =
/// prompt + generated, stopping on BOS/EOS (not kept) or max tokens. Same chunks, same rows, so
/// the same bits: that is what lets the harness demand identical tokens from every mode.
/// </summary>
internal static class SoloGeneration
{
    /// <param name="modelLock">Taken around every model call when given (the global-lock mode); sampling runs outside it.</param>
    public static async Task RunAsync(
        DecoderModel model,
        ITokenizer tokenizer,
        BenchRequest request,
        Workload workload,
        KvMemoryAccount account,
        SemaphoreSlim? modelLock,
        RequestTrace trace)
    {
        var config = model.Config;
        var prompt = request.PromptIds;
        using var workspace = new StepWorkspace();
        var logits = new float[config.VocabSize];
        // Same initial capacity as the pipeline's prefill actor, so KV peaks compare like for like.
        using var cache = new KvCache(config, account, initialCapacity: Math.Min(config.SeqLen, prompt.Length + workload.MaxTokens));
        int block = model.AttentionBlock;
        for (int fed = 0; fed < prompt.Length;)
        {
            int length = PrefillScheduler.ChunkLength(fed, prompt.Length, block);
            await StepAsync(new SequenceStep(cache, prompt.AsMemory(fed, length)), StepKind.Prefill);
            fed += length;
        }
        var history = new List<int>(prompt.Length + workload.MaxTokens);
        history.AddRange(prompt);
        int generated = 0;
        while (true)
        {
            int token = Sampler.Sample(logits, workload.Sampling, request.Seed, generated, CollectionsMarshal.AsSpan(history));
            if (!workload.IgnoreEos && (token == tokenizer.BosId || tokenizer.EndIds.Contains(token))) break;
            generated++;
            history.Add(token);
            trace.TokenArrived(token);
            if (generated >= workload.MaxTokens) break;
            await StepAsync(new SequenceStep(cache, new[] { token }), StepKind.Decode);
        }

        async Task StepAsync(SequenceStep row, StepKind kind)
        {
            if (modelLock is null)
            {
                model.Step([row], workspace, logits, kind);
                return;
            }
            await modelLock.WaitAsync();
            try { model.Step([row], workspace, logits, kind); }
            finally { modelLock.Release(); }
        }
    }
}
