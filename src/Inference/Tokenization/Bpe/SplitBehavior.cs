namespace Pipeline.Inference.Tokenization.Bpe;

/// <summary>What a split does with the delimiters it finds (Hugging Face <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior
{
    /// <summary>Delimiters dropped.</summary>
    Removed,

    /// <summary>Each delimiter its own piece.</summary>
    Isolated,

    /// <summary>Each delimiter joined to the piece before it.</summary>
    MergedWithPrevious,

    /// <summary>Each delimiter joined to the piece after it.</summary>
    MergedWithNext,

    /// <summary>Adjacent delimiters joined into one piece.</summary>
    Contiguous,
}

/// <summary>Splits text into (start, length) pieces around matches, by a <see cref="SplitBehavior"/>.</summary>
internal static class Splitting
{
    /// <summary>
    /// Pieces of [0, <paramref name="textLength"/>) given the delimiter <paramref name="matches"/>
    /// (sorted, non-overlapping). With <paramref name="invert"/> the matches are the content and
    /// the gaps between them the delimiters.
    /// </summary>
    public static List<(int Start, int Length)> Split(int textLength, List<(int Start, int Length)> matches, SplitBehavior behavior, bool invert)
    {
        // Every region of the text in order, flagged as delimiter or not.
        var regions = new List<(int Start, int Length, bool Delimiter)>(matches.Count * 2 + 1);
        int at = 0;
        foreach (var (start, length) in matches)
        {
            if (start > at)
            {
                regions.Add((at, start - at, invert));
            }

            regions.Add((start, length, !invert));
            at = start + length;
        }

        if (at < textLength)
        {
            regions.Add((at, textLength - at, invert));
        }

        var pieces = new List<(int Start, int Length)>(regions.Count);
        for (int i = 0; i < regions.Count; i++)
        {
            var (start, length, delimiter) = regions[i];
            switch (behavior)
            {
                case SplitBehavior.Removed when delimiter:
                    break;
                case SplitBehavior.MergedWithPrevious when delimiter && pieces.Count > 0 && !regions[i - 1].Delimiter:
                case SplitBehavior.Contiguous when delimiter && pieces.Count > 0 && regions[i - 1].Delimiter:
                    pieces[^1] = (pieces[^1].Start, pieces[^1].Length + length);
                    break;
                case SplitBehavior.MergedWithNext when !delimiter && i > 0 && regions[i - 1].Delimiter:
                    pieces[^1] = (pieces[^1].Start, pieces[^1].Length + length);
                    break;
                default:
                    pieces.Add((start, length));
                    break;
            }
        }

        return pieces;
    }
}
