namespace Pipeline.Inference.Tokenization.Bpe;

/// <summary>
/// Byte-pair merges by rank (Hugging Face BPE, llama.cpp's gpt2 tokenizer): the pair of adjacent
/// symbols with the lowest merge rank merges first, the leftmost among equal ranks. A priority queue
/// of candidate pairs with lazy invalidation keeps a word of n symbols at O(n log n). Immutable.
/// </summary>
internal sealed class RankedMerges
{
    // (left id << 32 | right id) -> rank; the merged symbol's id is _mergedIds[rank].
    private readonly Dictionary<long, int> _rankOfPair;
    private readonly int[] _mergedIds;

    public RankedMerges(IReadOnlyList<(int Left, int Right, int Merged)> merges)
    {
        _rankOfPair = new Dictionary<long, int>(merges.Count, PairKeyComparer.Instance);
        _mergedIds = new int[merges.Count];
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right, merged) = merges[rank];
            _mergedIds[rank] = merged;
            _rankOfPair.TryAdd(Key(left, right), rank); // a repeated pair keeps its first (best) rank
        }
    }

    public int Count => _mergedIds.Length;

    /// <summary>
    /// Merges the symbol ids of one word in place. Ids below 0 stand for symbols that merge with
    /// nothing (characters outside the vocabulary).
    /// </summary>
    public void Apply(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2)
        {
            return;
        }

        var ids = symbols.ToArray();
        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }

        var queue = new PriorityQueue<int, (int Rank, int Position)>();
        for (int i = 0; i + 1 < n; i++)
        {
            Enqueue(queue, ids, i, i + 1);
        }

        while (queue.TryDequeue(out int left, out var priority))
        {
            int right = next[left];
            // Stale entries: the left symbol was merged away (id -2), or its right neighbour changed.
            if (ids[left] == Removed || right < 0 || !_rankOfPair.TryGetValue(Key(ids[left], ids[right]), out int rank) || rank != priority.Rank)
            {
                continue;
            }

            ids[left] = _mergedIds[rank];
            ids[right] = Removed;
            next[left] = next[right];
            if (next[left] >= 0)
            {
                prev[next[left]] = left;
            }

            if (prev[left] >= 0)
            {
                Enqueue(queue, ids, prev[left], left);
            }

            if (next[left] >= 0)
            {
                Enqueue(queue, ids, left, next[left]);
            }
        }

        symbols.Clear();
        for (int i = 0; i >= 0; i = next[i])
        {
            symbols.Add(ids[i]);
        }
    }

    private const int Removed = int.MinValue;

    private void Enqueue(PriorityQueue<int, (int, int)> queue, int[] ids, int left, int right)
    {
        if (ids[left] >= 0 && ids[right] >= 0 && _rankOfPair.TryGetValue(Key(ids[left], ids[right]), out int rank))
        {
            queue.Enqueue(left, (rank, left));
        }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>
    /// long's own hash (low ^ high) sends pairs of ids below 2^17 to a few thousand buckets, making
    /// every lookup walk a long chain; a multiplicative hash spreads them.
    /// </summary>
    private sealed class PairKeyComparer : IEqualityComparer<long>
    {
        public static readonly PairKeyComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long key) => (int)((ulong)key * 0x9E3779B97F4A7C15UL >> 32);
    }
}
