using Pipeline.Inference.Runtime;

namespace Pipeline.Testing;

/// <summary>Inputs for direct model calls in batching tests: seeded token ids, and caches prefilled alone.</summary>
internal static class StepInputs
{
    /// <summary><paramref name="count"/> ids in 3..511 from <paramref name="seed"/> (xorshift): the same ids every time.</summary>
    public static int[] Tokens(int seed, int count)
    {
        var tokens = new int[count];
        ulong s = (ulong)seed * 0x9E3779B97F4A7C15UL + 1;
        for (int i = 0; i < count; i++)
        {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            tokens[i] = 3 + (int)(s % 509);
        }
        return tokens;
    }

    /// <summary>
    /// A cache of <paramref name="past"/> positions prefilled alone, unpadded, in chunks of one
    /// attention block from position 0 as the host's prefill cuts prompts: the same bits every time.
    /// </summary>
    public static KvCache Prefilled(DecoderModel model, int past, int seed)
    {
        var cache = new KvCache(model.Config);
        var tokens = Tokens(seed, past);
        var logits = new float[model.Config.VocabSize];
        for (int start = 0; start < past; start += model.AttentionBlock)
            model.Step([new SequenceStep(cache, tokens.AsMemory(start, Math.Min(model.AttentionBlock, past - start)))], new StepWorkspace(), logits, StepKind.Prefill, BatchShapes.Exact);
        return cache;
    }
}
