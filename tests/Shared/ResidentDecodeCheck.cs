using Pipeline.Inference.Runtime;

namespace Pipeline.Testing;

/// <summary>
/// Continuous batching over many decode steps, run twice: by a model whose decode calls read a
/// resident pool, and by one that stages every row's past per call. Sequences join, sit a step out,
/// come back and leave at seeded random; every step's logits and, at the end, every cache must be
/// bit for bit the same. What the pool adds to the staged path (slots kept across steps, new
/// positions written in place, uploads on joining and returning, several parts) is all exercised.
/// </summary>
internal static class ResidentDecodeCheck
{
    /// <summary>What a run explored, for the caller's minimums.</summary>
    public sealed record Explored(int Steps, int Sequences, int Rejoins, int MaxRows, int Parts, long Uploads, int MixedLengths);

    public static Explored Run(DecoderModel resident, DecoderModel staged, int sequences, int steps, int seed)
    {
        ArgumentNullException.ThrowIfNull(resident);
        ArgumentNullException.ThrowIfNull(staged);
        if (resident.ResidentKv is null) throw new ArgumentException("the first model does not keep a resident pool", nameof(resident));
        if (staged.ResidentKv is not null) throw new ArgumentException("the second model keeps a resident pool", nameof(staged));
        using var stagedWorkspace = new StepWorkspace();
        return Run(resident, staged, (rows, logits) => staged.Step(rows, stagedWorkspace, logits), "staged", sequences, steps, seed);
    }

    /// <summary>
    /// As <see cref="Run(DecoderModel, DecoderModel, int, int, int)"/>, but the reference is the same
    /// resident model stepping each sequence alone, in a workspace (and pool) of its own: where the
    /// resident graph differs from the staged one (the float16 GroupQueryAttention graph), a row's
    /// logits must still not depend on the crowd it decodes in, on its slot, or on being uploaded
    /// again after sitting a step out.
    /// </summary>
    public static Explored RunAgainstSolo(DecoderModel resident, int sequences, int steps, int seed)
    {
        ArgumentNullException.ThrowIfNull(resident);
        if (resident.ResidentKv is null) throw new ArgumentException("the model does not keep a resident pool", nameof(resident));
        var alone = new Dictionary<KvCache, StepWorkspace>(ReferenceEqualityComparer.Instance);
        try
        {
            return Run(resident, resident, (rows, logits) =>
            {
                int vocab = resident.Config.VocabSize;
                for (int i = 0; i < rows.Length; i++)
                {
                    if (!alone.TryGetValue(rows[i].Cache, out var workspace)) alone[rows[i].Cache] = workspace = new StepWorkspace();
                    resident.Step([rows[i]], workspace, logits.AsSpan(i * vocab, vocab));
                }
            }, "solo", sequences, steps, seed);
        }
        finally
        {
            foreach (var workspace in alone.Values) workspace.Dispose();
        }
    }

    private static Explored Run(DecoderModel resident, DecoderModel prefill, Action<SequenceStep[], float[]> reference, string referenceName, int sequences, int steps, int seed)
    {
        var random = new Random(seed);
        var c = resident.Config;
        int vocab = c.VocabSize, maxPast = Math.Min(c.SeqLen - steps - 2, 3 * resident.AttentionBlock);
        var pending = new Queue<int>(Enumerable.Range(0, sequences));
        var live = new List<Live>();
        int rejoins = 0, maxRows = 0, mixed = 0, ran = 0;
        using var residentWorkspace = new StepWorkspace();
        try
        {
            for (int step = 0; step < steps; step++)
            {
                // Joins, up to a quarter of a call's rows at a time, while sequences are left: enough
                // that the live set outgrows one call, so a second part is needed.
                for (int j = random.Next(0, Math.Max(4, resident.Shapes.DecodeRows / 4)); j > 0 && pending.Count > 0; j--)
                {
                    int id = pending.Dequeue();
                    var cache = StepInputs.Prefilled(prefill, random.Next(1, maxPast), seed * 1000 + id);
                    live.Add(new Live(id, cache.Clone(), cache));
                }
                // Leaves, and sequences that sit this step out.
                for (int i = live.Count - 1; i >= 0; i--)
                    if (random.Next(20) == 0) { live[i].Dispose(); live.RemoveAt(i); }
                var rows = live.Where(s => random.Next(6) != 0).ToList();
                foreach (var s in rows) if (s.SatOut) { rejoins++; s.SatOut = false; }
                foreach (var s in live.Except(rows)) s.SatOut = true;
                if (rows.Count == 0) continue;
                maxRows = Math.Max(maxRows, rows.Count);
                if (rows.Select(s => s.Resident.Length).Distinct().Count() > 1) mixed++;
                var tokens = rows.Select(s => new[] { StepInputs.Tokens(seed + s.Id, steps + 1)[step] }).ToArray();
                var residentLogits = new float[rows.Count * vocab];
                var stagedLogits = new float[rows.Count * vocab];
                resident.Step(rows.Select((s, i) => new SequenceStep(s.Resident, tokens[i])).ToArray(), residentWorkspace, residentLogits);
                reference(rows.Select((s, i) => new SequenceStep(s.Staged, tokens[i])).ToArray(), stagedLogits);
                ran++;
                for (int i = 0; i < rows.Count; i++)
                    if (!Bits.Equal(residentLogits.AsSpan(i * vocab, vocab), stagedLogits.AsSpan(i * vocab, vocab)))
                        throw new InvalidOperationException($"step {step}: sequence {rows[i].Id} (row {i} of {rows.Count}, past {rows[i].Staged.Length - 1}): resident logits differ from {referenceName}");
            }
            foreach (var s in live)
                for (int l = 0; l < c.Layers; l++)
                    for (int h = 0; h < c.KvHeads; h++)
                        if (!Bits.Equal(s.Resident.Keys(l, h), s.Staged.Keys(l, h)) || !Bits.Equal(s.Resident.Values(l, h), s.Staged.Values(l, h)))
                            throw new InvalidOperationException($"sequence {s.Id}: resident cache differs from {referenceName} at layer {l}, head {h}");
            // The pool as the workspace holds it: its parts and uploads.
            var pool = residentWorkspace.ResidentPool(() => throw new InvalidOperationException("no pool was made"));
            return new Explored(ran, sequences - pending.Count, rejoins, maxRows, pool.PartCount, pool.Uploads, mixed);
        }
        finally
        {
            foreach (var s in live) s.Dispose();
        }
    }

    private sealed class Live(int id, KvCache resident, KvCache staged) : IDisposable
    {
        public int Id { get; } = id;
        public KvCache Resident { get; } = resident;
        public KvCache Staged { get; } = staged;
        public bool SatOut { get; set; }

        public void Dispose()
        {
            Resident.Dispose();
            Staged.Dispose();
        }
    }
}
