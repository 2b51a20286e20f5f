using System.Text;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// The decoding half of a vocabulary, precomputed at load: each id's piece, the exact bytes it adds
/// to decoded text, and the bytes it adds at the start of a text (where SentencePiece-style
/// decoders drop a leading space). <see cref="Decode"/> is the concatenation of
/// <see cref="TokenBytes"/>, so streaming and whole-text decoding agree byte for byte. Immutable.
/// </summary>
internal sealed class TokenTable
{
    private static readonly byte[] NoBytes = [];

    private readonly string[] _pieces;
    private readonly byte[][] _bytes;
    private readonly byte[][] _bytesAtStart;
    private readonly bool[] _special;
    private readonly int _startMarkerId;

    /// <param name="pieces">Each id's piece as the vocabulary spells it ("" for unused ids).</param>
    /// <param name="bytes">The bytes each id adds inside a text.</param>
    /// <param name="bytesAtStart">The bytes each id adds first in a text; null when always the same as <paramref name="bytes"/>.</param>
    /// <param name="special">Which ids are special (control) tokens, giving no bytes.</param>
    /// <param name="startMarkerId">An id after which a text counts as starting (the BOS id), or -1.</param>
    public TokenTable(string[] pieces, byte[][] bytes, byte[][]? bytesAtStart, bool[] special, int startMarkerId)
    {
        _pieces = pieces;
        _bytes = bytes;
        _bytesAtStart = bytesAtStart ?? bytes;
        _special = special;
        _startMarkerId = startMarkerId;
    }

    public int Count => _pieces.Length;

    public ReadOnlySpan<byte> TokenBytes(int previousId, int id)
    {
        CheckId(id);
        if (_special[id])
        {
            return NoBytes;
        }

        return previousId == -1 || previousId == _startMarkerId ? _bytesAtStart[id] : _bytes[id];
    }

    /// <summary>Decodes ids; with <paramref name="skipSpecial"/> false, special tokens give their piece's text.</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecial)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var utf8 = new List<byte>(ids.Count * 4);
        int previousId = -1;
        foreach (int id in ids)
        {
            if (!skipSpecial && IsSpecial(id))
            {
                utf8.AddRange(Encoding.UTF8.GetBytes(_pieces[id]));
            }
            else
            {
                utf8.AddRange(TokenBytes(previousId, id));
            }

            previousId = id;
        }

        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(utf8));
    }

    public string PieceOf(int id)
    {
        CheckId(id);
        return _pieces[id];
    }

    public bool IsSpecial(int id)
    {
        CheckId(id);
        return _special[id];
    }

    private void CheckId(int id)
    {
        if ((uint)id >= (uint)_pieces.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary of {_pieces.Length}.");
        }
    }
}
