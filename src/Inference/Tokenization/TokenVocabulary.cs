using System.Text;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// The pieces and merge scores of a llama2.c tokenizer file (tok512.bin), indexed by token id,
/// plus the bytes each id decodes to. Immutable once read; shared by encoders and decoders.
/// </summary>
internal sealed class TokenVocabulary
{
    public const int UnknownId = 0;
    public const int BosId = 1;
    public const int EosId = 2;

    /// <summary>Id of the byte-fallback piece "&lt;0x00&gt;"; byte b is id b + FirstByteId.</summary>
    public const int FirstByteId = 3;

    /// <summary>Stands for "no token decoded before this one" (start of a whole decode).</summary>
    public const int NoPreviousId = -1;

    // Piece text as stored by llama2.c: a real ' ' where SentencePiece writes '▁'. [Count]
    private readonly string[] _pieces;

    // Merge score of each piece; higher merges first. [Count]
    private readonly float[] _scores;

    // Exact piece text -> id; llama2.c's str_lookup over every piece, control pieces included.
    private readonly Dictionary<string, int> _idByPiece;

    // Bytes a piece decodes to anywhere but straight after BOS: the raw byte for "<0xXX>",
    // nothing for the control pieces, the piece's UTF-8 otherwise. [Count][*]
    private readonly byte[][] _decodedBytes;

    // As _decodedBytes, but with a leading ' ' removed: llama2.c drops it right after BOS. [Count][*]
    private readonly byte[][] _decodedBytesAfterBos;

    private TokenVocabulary(string[] pieces, float[] scores, int maxPieceByteLength)
    {
        _pieces = pieces;
        _scores = scores;
        MaxPieceByteLength = maxPieceByteLength;
        _idByPiece = new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        _decodedBytes = new byte[pieces.Length][];
        _decodedBytesAfterBos = new byte[pieces.Length][];
        for (int id = 0; id < pieces.Length; id++)
        {
            if (!_idByPiece.TryAdd(pieces[id], id))
            {
                throw new InvalidDataException($"Tokenizer piece {id} repeats piece {_idByPiece[pieces[id]]}: '{pieces[id]}'.");
            }

            byte[] bytes = IsControl(id) ? []
                : TryParseBytePiece(pieces[id], out byte value) ? [value]
                : Encoding.UTF8.GetBytes(pieces[id]);
            _decodedBytes[id] = bytes;
            _decodedBytesAfterBos[id] = bytes.Length > 0 && bytes[0] == (byte)' ' && !IsBytePiece(id) ? bytes[1..] : bytes;
        }
    }

    public int Count => _pieces.Length;

    /// <summary>The longest piece in UTF-8 bytes, as recorded in the file header.</summary>
    public int MaxPieceByteLength { get; }

    /// <summary>
    /// Reads a llama2.c tokenizer file: int32 max_token_length, then per piece float32 score,
    /// int32 byte length and the UTF-8 bytes, little-endian, until the end of the file.
    /// </summary>
    public static TokenVocabulary Read(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        int maxPieceByteLength = reader.ReadInt32();
        var pieces = new List<string>();
        var scores = new List<float>();
        var strictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        while (stream.Position < stream.Length)
        {
            scores.Add(reader.ReadSingle());
            int length = reader.ReadInt32();
            if (length <= 0 || length > maxPieceByteLength)
            {
                throw new InvalidDataException($"Tokenizer piece {pieces.Count} has length {length}, outside 1..{maxPieceByteLength}.");
            }

            byte[] bytes = reader.ReadBytes(length);
            if (bytes.Length != length)
            {
                throw new InvalidDataException($"Tokenizer file ends inside piece {pieces.Count}.");
            }

            pieces.Add(strictUtf8.GetString(bytes));
        }

        if (pieces.Count < FirstByteId + 256)
        {
            throw new InvalidDataException($"Tokenizer has {pieces.Count} pieces; byte fallback needs at least {FirstByteId + 256}.");
        }

        return new TokenVocabulary([.. pieces], [.. scores], maxPieceByteLength);
    }

    public string Piece(int id) => _pieces[id];

    public float Score(int id) => _scores[id];

    public bool TryGetId(string piece, out int id) => _idByPiece.TryGetValue(piece, out id);

    public static bool IsControl(int id) => id is UnknownId or BosId or EosId;

    public bool IsBytePiece(int id) => !IsControl(id) && TryParseBytePiece(_pieces[id], out _);

    /// <summary>
    /// The bytes <paramref name="id"/> contributes to decoded text, following llama2.c's
    /// decode(prev, token): a leading space is dropped straight after BOS.
    /// </summary>
    public ReadOnlySpan<byte> DecodedBytes(int previousId, int id)
    {
        if ((uint)id >= (uint)_pieces.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token ids run from 0 to {_pieces.Length - 1}.");
        }

        return previousId == BosId ? _decodedBytesAfterBos[id] : _decodedBytes[id];
    }

    // "<0x0A>" -> 0x0A. llama2.c recognises these with sscanf("<0x%02hhX>").
    private static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }
}
