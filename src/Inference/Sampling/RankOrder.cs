namespace Pipeline.Inference.Sampling;

/// <summary>
/// Puts a vocabulary's probabilities in rank order (probability descending, then id ascending):
/// a stable radix sort on the high 32 bits of each probability, then the rare runs that share them
/// ordered by the low 32 bits. Linear in the vocabulary, where the comparison sort it replaced was
/// most of a 32,000-token draw (docs/PERFORMANCE.md, "Sampler").
/// </summary>
/// <remarks>
/// The order is total (ties go to the lower id), so the result is the one any correct sort gives:
/// the sampler's tokens did not change when this replaced <c>Span.Sort</c> plus a tie fix
/// (RankOrderProperties). A non-negative double's bits increase with its value, so descending
/// probability is ascending complemented bits; a stable sort of ids that start in ascending order
/// leaves ties in id order.
/// </remarks>
internal static class RankOrder
{
    private const int DigitBits = 11;
    private const int Buckets = 1 << DigitBits;
    private const int Passes = 3; // 11 + 11 + 10 bits: the high 32 bits of a double
    private const int InsertionRun = 16;

    /// <summary>Entries the <c>counts</c> scratch needs: one histogram per digit.</summary>
    public const int CountsLength = Passes * Buckets;

    /// <summary>
    /// Sorts <paramref name="probabilities"/> (by id on entry, each ≥ 0 and not NaN) into rank order
    /// in place and writes the id of each rank to <paramref name="ids"/>. Every other span is
    /// scratch of the vocabulary's length, except <paramref name="counts"/> (<see cref="CountsLength"/>).
    /// </summary>
    public static void Sort(Span<double> probabilities, Span<int> ids, Span<double> byId, Span<uint> keys, Span<uint> spareKeys, Span<int> spareIds, Span<ulong> run, Span<int> counts)
    {
        int n = probabilities.Length;
        if (ids.Length != n || byId.Length != n || keys.Length != n || spareKeys.Length != n || spareIds.Length != n
            || run.Length != n || counts.Length != CountsLength)
            throw new ArgumentException("rank scratch does not match the vocabulary");

        counts.Clear();
        probabilities.CopyTo(byId);
        for (int i = 0; i < n; i++)
        {
            uint key = High(byId[i]);
            keys[i] = key;
            ids[i] = i;
            counts[(int)(key & (Buckets - 1))]++;
            counts[Buckets + (int)((key >> DigitBits) & (Buckets - 1))]++;
            counts[2 * Buckets + (int)(key >> (2 * DigitBits))]++;
        }

        // Each pass moves (key, id) pairs from one pair of buffers to the other; a pass whose digit
        // is the same for every key would move nothing, so it is skipped.
        Span<uint> fromKeys = keys, toKeys = spareKeys;
        Span<int> fromIds = ids, toIds = spareIds;
        for (int pass = 0; pass < Passes; pass++)
        {
            var count = counts.Slice(pass * Buckets, Buckets);
            int shift = pass * DigitBits;
            if (count[(int)((fromKeys[0] >> shift) & (Buckets - 1))] == n) continue;

            int offset = 0;
            for (int b = 0; b < Buckets; b++) { int c = count[b]; count[b] = offset; offset += c; }
            for (int i = 0; i < n; i++)
            {
                uint key = fromKeys[i];
                int at = count[(int)((key >> shift) & (Buckets - 1))]++;
                toKeys[at] = key;
                toIds[at] = fromIds[i];
            }
            var k = fromKeys; fromKeys = toKeys; toKeys = k;
            var d = fromIds; fromIds = toIds; toIds = d;
        }
        if (fromIds != ids) fromIds.CopyTo(ids);

        // A run sharing its high 32 bits is in id order; order it by the low 32 bits, ties staying
        // in id order. Runs are short unless values tie exactly, which the insertion sort passes
        // in one sweep; a long run of distinct low bits is sorted as (low, id) pairs instead.
        for (int start = 0; start < n;)
        {
            int end = start + 1;
            while (end < n && fromKeys[end] == fromKeys[start]) end++;
            if (end - start > 1) SortRun(ids[start..end], byId, run[start..end]);
            start = end;
        }
        for (int rank = 0; rank < n; rank++) probabilities[rank] = byId[ids[rank]];
    }

    private static void SortRun(Span<int> ids, ReadOnlySpan<double> byId, Span<ulong> pairs)
    {
        int shifts = 0;
        for (int i = 1; i < ids.Length; i++)
        {
            int id = ids[i];
            uint low = Low(byId[id]);
            int j = i - 1;
            while (j >= 0 && Low(byId[ids[j]]) > low) { ids[j + 1] = ids[j]; j--; shifts++; }
            ids[j + 1] = id;
            if (shifts > InsertionRun * ids.Length) { SortPairs(ids, byId, pairs); return; }
        }
    }

    private static void SortPairs(Span<int> ids, ReadOnlySpan<double> byId, Span<ulong> pairs)
    {
        for (int i = 0; i < ids.Length; i++) pairs[i] = ((ulong)Low(byId[ids[i]]) << 32) | (uint)ids[i];
        pairs.Sort();
        for (int i = 0; i < ids.Length; i++) ids[i] = (int)(uint)pairs[i];
    }

    private static uint High(double p) => ~(uint)(BitConverter.DoubleToUInt64Bits(p) >> 32);

    private static uint Low(double p) => ~(uint)BitConverter.DoubleToUInt64Bits(p);
}
