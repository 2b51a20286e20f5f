using System.Runtime.InteropServices;
using System.Text;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Inference.Text;

/// <summary>
/// The UTF-8 of one generation as its tokens arrive, and how much of it may be shown: only whole
/// characters (a character split over byte-fallback tokens comes out once, complete) and never
/// bytes that may yet begin a stop string. The streaming path of the product: the detokenize
/// actor keeps one per live sequence.
/// </summary>
internal sealed class GeneratedText(ITokenizer tokenizer)
{
    private readonly List<byte> _bytes = [];
    private int _shown;

    /// <summary>Appends the bytes <paramref name="id"/> adds after <paramref name="previousId"/>.</summary>
    public void Add(int previousId, int id) => _bytes.AddRange(tokenizer.TokenBytes(previousId, id));

    /// <summary>
    /// The text not shown yet, up to the last complete character before the final
    /// <paramref name="heldBytes"/> (a possible stop string's start); often empty.
    /// </summary>
    public string Release(int heldBytes)
    {
        var pending = CollectionsMarshal.AsSpan(_bytes)[_shown..];
        int held = Math.Min(heldBytes, pending.Length);
        return Show(_shown + Utf8Boundary.CompletePrefix(pending[..^held]));
    }

    /// <summary>
    /// The generation has ended: the rest of the text, up to the stop string at byte
    /// <paramref name="stopAt"/> when one matched; an unfinished character becomes U+FFFD.
    /// </summary>
    public string ReleaseAll(long? stopAt)
    {
        int end = (int)Math.Max(_shown, Math.Min(stopAt ?? _bytes.Count, _bytes.Count));
        return Show(end);
    }

    /// <summary>Everything shown so far, as one string.</summary>
    public string Shown => Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(_bytes)[.._shown]);

    private string Show(int boundary)
    {
        var delta = Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(_bytes)[_shown..boundary]);
        _shown = boundary;
        return delta;
    }
}
