namespace Pipeline.Inference.Tokenization.Bpe;

/// <summary>
/// SentencePiece BPE by piece scores, as llama.cpp's SPM tokenizer (and llama2.c's encode) do it:
/// start from the characters of the text, repeatedly merge the adjacent pair whose concatenation is
/// a piece with the highest score (the leftmost among equal scores), then emit each final symbol as
/// its piece, or as its UTF-8 bytes' <c>&lt;0xXX&gt;</c> pieces when it has none. Immutable.
/// </summary>
internal sealed class ScoredMerges
{
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idOfPiece;
    private readonly float[] _scores;
    private readonly int[] _byteIds; // id of <0xXX> for each byte, or the unknown id where absent

    public ScoredMerges(Dictionary<string, int> idOfPiece, float[] scores, int[] byteIds)
    {
        _idOfPiece = idOfPiece.GetAlternateLookup<ReadOnlySpan<char>>();
        _scores = scores;
        _byteIds = byteIds;
    }

    /// <summary>Appends the ids of <paramref name="text"/> (already escaped: spaces as '▁') to <paramref name="output"/>.</summary>
    public void Encode(string text, List<int> output)
    {
        if (text.Length == 0)
        {
            return;
        }

        // Symbols are code points: start offset and length in chars, linked as a list.
        int n = 0;
        var start = new int[text.Length];
        var length = new int[text.Length];
        for (int i = 0; i < text.Length; i += length[n - 1])
        {
            start[n] = i;
            length[n] = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            n++;
        }

        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }

        // Highest score first, then leftmost: the priority is (-score, left position).
        var queue = new PriorityQueue<(int Left, int Right, int Length), (float, int)>();
        for (int i = 0; i + 1 < n; i++)
        {
            TryEnqueue(queue, text, start, length, i, i + 1);
        }

        while (queue.TryDequeue(out var bigram, out _))
        {
            // Stale when either side changed since the pair was queued.
            if (length[bigram.Left] == 0 || length[bigram.Right] == 0 || length[bigram.Left] + length[bigram.Right] != bigram.Length
                || next[bigram.Left] != bigram.Right)
            {
                continue;
            }

            length[bigram.Left] += length[bigram.Right];
            length[bigram.Right] = 0;
            next[bigram.Left] = next[bigram.Right];
            if (next[bigram.Left] >= 0)
            {
                prev[next[bigram.Left]] = bigram.Left;
            }

            if (prev[bigram.Left] >= 0)
            {
                TryEnqueue(queue, text, start, length, prev[bigram.Left], bigram.Left);
            }

            if (next[bigram.Left] >= 0)
            {
                TryEnqueue(queue, text, start, length, bigram.Left, next[bigram.Left]);
            }
        }

        Span<byte> utf8 = stackalloc byte[8];
        for (int i = 0; i >= 0; i = next[i])
        {
            var piece = text.AsSpan(start[i], length[i]);
            if (_idOfPiece.TryGetValue(piece, out int id))
            {
                output.Add(id);
                continue;
            }

            int byteCount = System.Text.Encoding.UTF8.GetBytes(piece, utf8);
            foreach (byte b in utf8[..byteCount])
            {
                output.Add(_byteIds[b]);
            }
        }
    }

    private void TryEnqueue(PriorityQueue<(int, int, int), (float, int)> queue, string text, int[] start, int[] length, int left, int right)
    {
        int mergedLength = length[left] + length[right];
        if (_idOfPiece.TryGetValue(text.AsSpan(start[left], mergedLength), out int id) && id < _scores.Length)
        {
            queue.Enqueue((left, right, mergedLength), (-_scores[id], left));
        }
    }
}
