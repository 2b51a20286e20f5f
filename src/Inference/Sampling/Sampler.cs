using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics;

namespace Pipeline.Inference.Sampling;

/// <summary>
/// Chooses the next token from a logit vector. Pure: the result depends only on the arguments, so a
/// request replays exactly from its seed, and batching or thread placement cannot change it.
/// </summary>
internal static class Sampler
{
    /// <summary>
    /// The token for draw <paramref name="drawIndex"/> of a request seeded with <paramref name="seed"/>.
    /// </summary>
    /// <param name="logits">One score per token id, shape [vocabulary]. -infinity masks a token; NaN and +infinity are rejected.</param>
    /// <param name="history">Token ids seen so far (prompt and output), for the repetition penalty; repeats are fine.</param>
    /// <exception cref="InvalidRequestException">An option is out of range.</exception>
    public static int Sample(ReadOnlySpan<float> logits, SamplingOptions options, ulong seed, long drawIndex, ReadOnlySpan<int> history)
    {
        // Order of the chain: penalty -> greedy shortcut -> temperature + softmax -> sort -> top-k ->
        // top-p -> min-p -> inverse CDF. Greedy returns before the draw so it never depends on the seed.
        // With no filter the inverse CDF walks the vocabulary in id order instead: the same
        // distribution, with nothing to rank (the ranking was most of a 32,000-token draw).
        CheckArguments(options);
        ArgumentOutOfRangeException.ThrowIfNegative(drawIndex);
        if ((options.RepetitionPenalty == 1f || history.IsEmpty) && (options.IsGreedy || IsUnfiltered(options, logits.Length)))
        {
            // Nothing to penalise and nothing to rank: the logits are read where they are, and only
            // block sums are kept (a 32,000-id draw neither copies nor writes out the vocabulary).
            var plainArgmax = CheckedArgmax(logits, history);
            if (options.IsGreedy) return plainArgmax;
            return DrawInIdOrder(logits, plainArgmax, options.Temperature, CounterRandom.NextDouble(seed, drawIndex));
        }
        using var workspace = new Workspace(logits.Length);
        var argmax = Penalise(logits, options.RepetitionPenalty, history, workspace);
        if (options.IsGreedy) return argmax;
        if (IsUnfiltered(options, logits.Length))
            return DrawInIdOrder(workspace.Logits, argmax, options.Temperature, CounterRandom.NextDouble(seed, drawIndex));

        var keptCount = RankAndFilter(options, argmax, workspace);
        var probabilities = workspace.Probabilities[..keptCount];
        var ids = workspace.Ids[..keptCount];

        // Inverse CDF over the kept tokens in rank order; scaling u by the kept mass renormalises for free.
        var target = CounterRandom.NextDouble(seed, drawIndex) * Sum(probabilities);
        var cumulative = 0.0;
        var lastPossible = 0;
        for (var rank = 0; rank < keptCount; rank++)
        {
            if (probabilities[rank] <= 0) continue;
            cumulative += probabilities[rank];
            lastPossible = rank;
            if (target < cumulative) return ids[rank];
        }
        // Only reachable when rounding leaves the summed CDF a hair under target.
        return ids[lastPossible];
    }

    /// <summary>
    /// Writes each token's softmax weight, exp((logit − max) · (1 / temperature)) in float (widened), into the
    /// workspace's probabilities by id, and the block sums into its block sums; returns their total
    /// (unnormalised). The arithmetic is <see cref="SoftmaxWeights"/>'s: the same bits on every machine.
    /// </summary>
    private static double Weigh(Workspace workspace, int argmax, float temperature) =>
        SoftmaxWeights.Fill(workspace.Logits, workspace.Logits[argmax], temperature, workspace.Probabilities, workspace.BlockSums);

    /// <summary>No top-k, top-p or min-p cut: every token keeps its softmax weight.</summary>
    private static bool IsUnfiltered(SamplingOptions options, int vocabulary) =>
        (options.TopK == 0 || options.TopK >= vocabulary) && options.TopP >= 1f && options.MinP == 0f;

    /// <summary>
    /// Inverse CDF over the whole vocabulary in id order: the first token whose running sum of
    /// softmax weights exceeds <paramref name="u"/> times their total (found block by block, see
    /// <see cref="SoftmaxWeights.Draw"/>).
    /// </summary>
    private static int DrawInIdOrder(ReadOnlySpan<float> logits, int argmax, float temperature, double u)
    {
        int blocks = SoftmaxWeights.BlockCount(logits.Length);
        double[]? rented = blocks > StackBlockSums ? ArrayPool<double>.Shared.Rent(blocks) : null;
        try
        {
            Span<double> blockSums = rented is null ? stackalloc double[StackBlockSums] : rented;
            blockSums = blockSums[..blocks];
            float max = logits[argmax];
            var total = SoftmaxWeights.BlockSums(logits, max, temperature, blockSums);
            return SoftmaxWeights.Draw(logits, max, temperature, blockSums, u * total, argmax);
        }
        finally
        {
            if (rented is not null) ArrayPool<double>.Shared.Return(rented);
        }
    }

    /// <summary>Block sums kept on the stack up to this many (a 131,072-id vocabulary); more are rented.</summary>
    private const int StackBlockSums = 2048;

    /// <summary>
    /// The distribution <see cref="Sample"/> draws from: kept ids in rank order (probability descending,
    /// then id ascending) with renormalised probabilities. Allocates; meant for tests and diagnostics.
    /// </summary>
    internal static IReadOnlyList<(int Id, double P)> Distribution(ReadOnlySpan<float> logits, SamplingOptions options, ReadOnlySpan<int> history)
    {
        CheckArguments(options);
        using var workspace = new Workspace(logits.Length);
        var argmax = Penalise(logits, options.RepetitionPenalty, history, workspace);
        if (options.IsGreedy) return [(argmax, 1.0)];

        var keptCount = RankAndFilter(options, argmax, workspace);
        var mass = Sum(workspace.Probabilities[..keptCount]);
        var result = new (int Id, double P)[keptCount];
        for (var rank = 0; rank < keptCount; rank++)
            result[rank] = (workspace.Ids[rank], workspace.Probabilities[rank] / mass);
        return result;
    }

    private static void CheckArguments(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
    }

    /// <summary>
    /// Copies the logits into the workspace with the repetition penalty applied once per distinct
    /// history id, checks them, and returns the argmax (lowest id on ties).
    /// </summary>
    private static int Penalise(ReadOnlySpan<float> logits, float penalty, ReadOnlySpan<int> history, Workspace workspace)
    {
        if (logits.IsEmpty) throw new ArgumentException("logits must not be empty.", nameof(logits));
        var penalised = workspace.Logits;
        logits.CopyTo(penalised);
        CheckHistory(history, penalised.Length);

        if (penalty != 1f && !history.IsEmpty)
        {
            // Ids is free until ranking, so it doubles as the "already penalised" mark per token.
            var penalisedAlready = workspace.Ids;
            penalisedAlready.Clear();
            foreach (var id in history)
            {
                if (penalisedAlready[id] != 0) continue;
                penalisedAlready[id] = 1;
                penalised[id] = penalised[id] > 0 ? penalised[id] / penalty : penalised[id] * penalty;
            }
        }

        return PossibleArgmax(penalised);
    }

    /// <summary>The argmax of logits nothing penalises, checked as <see cref="Penalise"/> checks them.</summary>
    private static int CheckedArgmax(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        if (logits.IsEmpty) throw new ArgumentException("logits must not be empty.", nameof(logits));
        CheckHistory(history, logits.Length);
        return PossibleArgmax(logits);
    }

    /// <summary><see cref="Argmax"/>, refusing logits where no token is possible.</summary>
    private static int PossibleArgmax(ReadOnlySpan<float> logits)
    {
        var argmax = Argmax(logits);
        if (float.IsNegativeInfinity(logits[argmax]))
            throw new ArgumentException("every logit is -infinity; at least one token must be possible.", nameof(logits));
        return argmax;
    }

    private static void CheckHistory(ReadOnlySpan<int> history, int vocabulary)
    {
        foreach (var id in history)
            if ((uint)id >= (uint)vocabulary)
                throw new ArgumentOutOfRangeException(nameof(history), id, $"history holds token id {id}, outside the vocabulary of {vocabulary}.");
    }

    /// <summary>
    /// The first id holding the largest logit (so −0 and +0 tie, and the lower id wins); throws naming the
    /// first NaN or +infinity. Vectorised: a max-and-check pass, then a search for the first equal lane.
    /// </summary>
    private static int Argmax(ReadOnlySpan<float> logits)
    {
        int n = logits.Length, id = 0, width = Vector256<float>.Count;
        var max = float.NegativeInfinity;
        if (n >= width)
        {
            var maxV = Vector256.Create(float.NegativeInfinity);
            var bad = Vector256<float>.Zero;
            var infinity = Vector256.Create(float.PositiveInfinity);
            for (; id <= n - width; id += width)
            {
                var v = Vector256.Create(logits.Slice(id, width));
                bad |= ~Vector256.Equals(v, v) | Vector256.Equals(v, infinity);
                maxV = Vector256.Max(maxV, v);
            }
            if (bad != Vector256<float>.Zero) ThrowFirstNonFinite(logits);
            for (int lane = 0; lane < width; lane++) max = Math.Max(max, maxV.GetElement(lane));
        }
        for (int tail = id; tail < n; tail++)
        {
            var logit = logits[tail];
            if (float.IsNaN(logit) || float.IsPositiveInfinity(logit)) ThrowFirstNonFinite(logits);
            if (logit > max) max = logit;
        }
        // With no NaN, == finds the first id equal to the max (−0 == +0, as the scalar > kept the first).
        for (id = 0; id <= n - width; id += width)
        {
            var hits = Vector256.Equals(Vector256.Create(logits.Slice(id, width)), Vector256.Create(max)).ExtractMostSignificantBits();
            if (hits != 0) return id + BitOperations.TrailingZeroCount(hits);
        }
        for (; id < n; id++)
            if (logits[id] == max) return id;
        return 0; // every logit is -infinity and the vector pass found none equal: unreachable, -inf == -inf
    }

    private static void ThrowFirstNonFinite(ReadOnlySpan<float> logits)
    {
        for (var id = 0; id < logits.Length; id++)
        {
            var logit = logits[id];
            if (float.IsNaN(logit) || float.IsPositiveInfinity(logit))
                throw new ArgumentException($"logit of token {id} is {logit}; logits must be finite or -infinity.", nameof(logits));
        }
    }

    /// <summary>
    /// Softmax at the options' temperature, then ranks tokens and applies top-k, top-p and min-p. Leaves
    /// the kept tokens as a prefix of the workspace (ids and their unrenormalised probabilities) and
    /// returns how many were kept (at least one).
    /// </summary>
    private static int RankAndFilter(SamplingOptions options, int argmax, Workspace workspace)
    {
        var keys = workspace.Probabilities;
        var ids = workspace.Ids;
        var total = Weigh(workspace, argmax, options.Temperature);
        for (var id = 0; id < keys.Length; id++) keys[id] = keys[id] / total;

        // Rank order is total (probability descending, then id ascending), so the result never
        // depends on the sort algorithm.
        RankOrder.Sort(keys, ids, workspace.ById, workspace.Keys, workspace.SpareKeys, workspace.SpareIds, workspace.Run, workspace.Counts);
        var probabilities = keys;

        var kept = options.TopK > 0 ? Math.Min(options.TopK, probabilities.Length) : probabilities.Length;

        if (options.TopP < 1f)
        {
            // Mass is measured after top-k (as llama.cpp, vLLM and HF do): the prefix must reach
            // top_p of what top-k left, not of the whole vocabulary.
            var target = options.TopP * Sum(probabilities[..kept]);
            var cumulative = 0.0;
            var prefix = 0;
            while (prefix < kept && (prefix == 0 || cumulative < target)) cumulative += probabilities[prefix++];
            kept = prefix;
        }

        if (options.MinP > 0f)
        {
            // Probabilities are non-increasing in rank order, so the survivors are a prefix.
            var threshold = options.MinP * probabilities[0];
            while (kept > 1 && probabilities[kept - 1] < threshold) kept--;
        }
        return kept;
    }

    private static double Sum(ReadOnlySpan<double> values)
    {
        // A plain left-to-right sum: the same order everywhere, so boundaries are decided identically.
        var sum = 0.0;
        foreach (var value in values) sum += value;
        return sum;
    }

    /// <summary>
    /// Per-call scratch rented from the shared pools, so steady-state sampling does not allocate.
    /// Each span has shape [vocabulary].
    /// </summary>
    private readonly struct Workspace : IDisposable
    {
        private readonly float[] _logits;        // penalised logits, by token id
        private readonly double[] _probabilities; // softmax by id, then by rank once sorted
        private readonly int[] _ids;              // history marks, then token ids by rank
        private readonly double[] _byId;          // the probabilities by id while they are ranked
        private readonly uint[] _keys;            // rank keys (complemented high bits of each probability)
        private readonly uint[] _spareKeys;       // the radix sort's other key buffer
        private readonly ulong[] _run;            // (low bits, id) pairs of a long run of equal keys
        private readonly int[] _spareIds;         // the radix sort's other id buffer
        private readonly int[] _counts;           // the radix sort's digit histograms, [RankOrder.CountsLength]
        private readonly double[] _blockSums;     // softmax weight per block of ids, [SoftmaxWeights.BlockCount]
        private readonly int _count;

        public Workspace(int vocabularyCount)
        {
            _count = vocabularyCount;
            _logits = ArrayPool<float>.Shared.Rent(vocabularyCount);
            _probabilities = ArrayPool<double>.Shared.Rent(vocabularyCount);
            _ids = ArrayPool<int>.Shared.Rent(vocabularyCount);
            _byId = ArrayPool<double>.Shared.Rent(vocabularyCount);
            _keys = ArrayPool<uint>.Shared.Rent(vocabularyCount);
            _spareKeys = ArrayPool<uint>.Shared.Rent(vocabularyCount);
            _run = ArrayPool<ulong>.Shared.Rent(vocabularyCount);
            _spareIds = ArrayPool<int>.Shared.Rent(vocabularyCount);
            _counts = ArrayPool<int>.Shared.Rent(RankOrder.CountsLength);
            _blockSums = ArrayPool<double>.Shared.Rent(SoftmaxWeights.BlockCount(vocabularyCount));
        }

        public Span<float> Logits => _logits.AsSpan(0, _count);
        public Span<double> Probabilities => _probabilities.AsSpan(0, _count);
        public Span<int> Ids => _ids.AsSpan(0, _count);
        public Span<double> ById => _byId.AsSpan(0, _count);
        public Span<uint> Keys => _keys.AsSpan(0, _count);
        public Span<uint> SpareKeys => _spareKeys.AsSpan(0, _count);
        public Span<ulong> Run => _run.AsSpan(0, _count);
        public Span<int> SpareIds => _spareIds.AsSpan(0, _count);
        public Span<int> Counts => _counts.AsSpan(0, RankOrder.CountsLength);
        public Span<double> BlockSums => _blockSums.AsSpan(0, SoftmaxWeights.BlockCount(_count));

        public void Dispose()
        {
            ArrayPool<float>.Shared.Return(_logits);
            ArrayPool<double>.Shared.Return(_probabilities);
            ArrayPool<int>.Shared.Return(_ids);
            ArrayPool<double>.Shared.Return(_byId);
            ArrayPool<uint>.Shared.Return(_keys);
            ArrayPool<uint>.Shared.Return(_spareKeys);
            ArrayPool<ulong>.Shared.Return(_run);
            ArrayPool<int>.Shared.Return(_spareIds);
            ArrayPool<int>.Shared.Return(_counts);
            ArrayPool<double>.Shared.Return(_blockSums);
        }
    }
}
