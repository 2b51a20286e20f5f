using System.Runtime.InteropServices;
using System.Text;

namespace Pipeline.Inference.Text;

/// <summary>
/// Finds the first stop string in a growing byte stream (the UTF-8 of the generated text),
/// keeping only as many trailing bytes as the longest stop string needs. The one place stop
/// strings are matched: the sample actor ends a sequence on <see cref="Append"/>'s offset, and
/// the detokenize actor holds back the <see cref="PartialMatchLength"/> bytes that may yet become one.
/// </summary>
internal sealed class StopMatcher
{
    private readonly byte[][] _stops;
    private readonly int _keep;
    private readonly List<byte> _tail = [];
    private long _tailStart;

    public StopMatcher(IReadOnlyList<string> stops)
    {
        ArgumentNullException.ThrowIfNull(stops);
        _stops = stops.Where(s => s.Length > 0).Select(Encoding.UTF8.GetBytes).ToArray();
        _keep = _stops.Length == 0 ? 0 : _stops.Max(s => s.Length);
    }

    /// <summary>
    /// After the last <see cref="Append"/> that found no stop string: the length of the longest
    /// end of the text that is the start of a stop string (0 when none), bytes that must not be
    /// shown yet.
    /// </summary>
    public int PartialMatchLength { get; private set; }

    /// <summary>The length of the longest end of <paramref name="text"/> that begins one of <paramref name="stops"/>.</summary>
    public static int LongestPartialMatch(ReadOnlySpan<byte> text, IReadOnlyList<byte[]> stops)
    {
        ArgumentNullException.ThrowIfNull(stops);
        int best = 0;
        foreach (var stop in stops)
            for (int len = Math.Min(stop.Length - 1, text.Length); len > best; len--)
                if (text[^len..].SequenceEqual(stop.AsSpan(0, len))) { best = len; break; }
        return best;
    }

    /// <summary>Appends bytes; returns the absolute offset where the earliest stop string begins, or null.</summary>
    public long? Append(ReadOnlySpan<byte> bytes)
    {
        if (_keep == 0) return null;
        foreach (var b in bytes) _tail.Add(b);
        var span = CollectionsMarshal.AsSpan(_tail);
        int earliest = -1;
        foreach (var stop in _stops)
        {
            int at = span.IndexOf(stop);
            if (at >= 0 && (earliest < 0 || at < earliest)) earliest = at;
        }
        if (earliest >= 0) return _tailStart + earliest;
        // A partial match is shorter than its stop string, so the kept tail always holds it.
        PartialMatchLength = LongestPartialMatch(span, _stops);
        int drop = _tail.Count - (_keep - 1);
        if (drop > 0)
        {
            _tail.RemoveRange(0, drop);
            _tailStart += drop;
        }
        return null;
    }
}
