using System.Text;
using System.Text.Json;
using Pipeline.Inference.Tokenization.Bpe;

namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>
/// The <c>model</c> of a <c>tokenizer.json</c> of type BPE: the vocabulary, the merges by rank,
/// and how a word's characters become initial symbols (byte fallback, the unknown token). Immutable.
/// </summary>
internal sealed class BpeModel
{
    private readonly Dictionary<string, int> _idOfPiece;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idOfSpan;
    private readonly RankedMerges _merges;
    private readonly int _unknownId;
    private readonly bool _fuseUnknown;
    private readonly bool _ignoreMerges;
    private readonly int[]? _byteFallbackIds; // <0xXX> ids, when byte_fallback is on

    private BpeModel(Dictionary<string, int> idOfPiece, RankedMerges merges, int unknownId, bool fuseUnknown, bool ignoreMerges, int[]? byteFallbackIds)
    {
        _idOfPiece = idOfPiece;
        _idOfSpan = idOfPiece.GetAlternateLookup<ReadOnlySpan<char>>();
        _merges = merges;
        _unknownId = unknownId;
        _fuseUnknown = fuseUnknown;
        _ignoreMerges = ignoreMerges;
        _byteFallbackIds = byteFallbackIds;
    }

    /// <summary>Piece to id, as the vocabulary lists them (added tokens not included).</summary>
    public IReadOnlyDictionary<string, int> Vocabulary => _idOfPiece;

    public static BpeModel Read(JsonComponent c)
    {
        // Older files leave the model's type out; Hugging Face then reads a model with merges as BPE.
        bool untypedBpe = c.OptionalString("type") is null && !c.Child("merges").IsNull;
        if (!untypedBpe && c.Type != "BPE")
        {
            throw c.Unsupported();
        }

        if (!string.IsNullOrEmpty(c.OptionalString("continuing_subword_prefix")) || !string.IsNullOrEmpty(c.OptionalString("end_of_word_suffix")))
        {
            throw c.Malformed("uses a continuing_subword_prefix or end_of_word_suffix, which this tokenizer does not support");
        }

        var dropout = c.Child("dropout").Element;
        if (dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
        {
            throw c.Malformed("has BPE dropout, which would make encoding random");
        }

        var vocab = c.Child("vocab");
        if (vocab.Element.ValueKind != JsonValueKind.Object)
        {
            throw vocab.Malformed("is not an object of piece: id");
        }

        var idOfPiece = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocab.Element.EnumerateObject())
        {
            if (!entry.Value.TryGetInt32(out int id) || id < 0)
            {
                throw vocab.Malformed($"gives piece \"{entry.Name}\" the id {entry.Value}, not a non-negative integer");
            }

            idOfPiece[entry.Name] = id;
        }

        var merges = ReadMerges(c.Child("merges"), idOfPiece);

        string? unknown = c.OptionalString("unk_token");
        int unknownId = unknown is null ? -1 : idOfPiece.TryGetValue(unknown, out int u) ? u
            : throw c.Malformed($"names unk_token \"{unknown}\", which is not in the vocabulary");

        int[]? byteIds = null;
        if (c.Bool("byte_fallback", absent: false))
        {
            byteIds = new int[256];
            for (int b = 0; b < 256; b++)
            {
                byteIds[b] = idOfPiece.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
            }
        }

        return new BpeModel(idOfPiece, merges, unknownId, c.Bool("fuse_unk", absent: false), c.Bool("ignore_merges", absent: false), byteIds);
    }

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Encode(string word, List<int> output)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (_ignoreMerges && _idOfPiece.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }

        var symbols = new List<int>(word.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var character = word.AsSpan(i, length);
            i += length;
            if (_idOfSpan.TryGetValue(character, out int id))
            {
                symbols.Add(id);
                continue;
            }

            if (_byteFallbackIds is not null)
            {
                int count = Encoding.UTF8.GetBytes(character, utf8);
                bool all = true;
                foreach (byte b in utf8[..count])
                {
                    all &= _byteFallbackIds[b] >= 0;
                }

                if (all)
                {
                    foreach (byte b in utf8[..count])
                    {
                        symbols.Add(_byteFallbackIds[b]);
                    }

                    continue;
                }
            }

            // Hugging Face drops a character it cannot spell when there is no unknown token.
            if (_unknownId >= 0 && !(_fuseUnknown && symbols.Count > 0 && symbols[^1] == _unknownId))
            {
                symbols.Add(_unknownId);
            }
        }

        _merges.Apply(symbols);
        output.AddRange(symbols);
    }

    private static RankedMerges ReadMerges(JsonComponent merges, Dictionary<string, int> idOfPiece)
    {
        if (merges.Element.ValueKind != JsonValueKind.Array)
        {
            throw merges.Malformed("is not a list");
        }

        var list = new List<(int, int, int)>(merges.Element.GetArrayLength());
        var lookup = idOfPiece.GetAlternateLookup<ReadOnlySpan<char>>();
        var joined = new char[256];
        int rank = 0;
        foreach (var merge in merges.Element.EnumerateArray())
        {
            // Older files write "left right"; newer ones ["left", "right"]. Looked up as spans: 280k merges, no garbage.
            if (merge.ValueKind == JsonValueKind.String)
            {
                string text = merge.GetString()!;
                int space = text.IndexOf(' ', StringComparison.Ordinal);
                if (space <= 0 || space == text.Length - 1)
                {
                    throw merges.Malformed($"entry {rank} \"{text}\" is not two pieces separated by a space");
                }

                var l = text.AsSpan(0, space);
                var r = text.AsSpan(space + 1);
                if (joined.Length < text.Length)
                {
                    joined = new char[text.Length * 2];
                }

                l.CopyTo(joined);
                r.CopyTo(joined.AsSpan(l.Length));
                if (!lookup.TryGetValue(l, out int li) || !lookup.TryGetValue(r, out int ri) || !lookup.TryGetValue(joined.AsSpan(0, l.Length + r.Length), out int mi))
                {
                    throw merges.Malformed($"entry {rank} \"{text}\" merges pieces that are not all in the vocabulary");
                }

                list.Add((li, ri, mi));
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                     && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                string left = merge[0].GetString()!;
                string right = merge[1].GetString()!;
                if (!idOfPiece.TryGetValue(left, out int l) || !idOfPiece.TryGetValue(right, out int r) || !idOfPiece.TryGetValue(left + right, out int m))
                {
                    throw merges.Malformed($"entry {rank} merges \"{left}\" and \"{right}\", which are not all in the vocabulary");
                }

                list.Add((l, r, m));
            }
            else
            {
                throw merges.Malformed($"entry {rank} is neither \"left right\" nor [left, right]");
            }

            rank++;
        }

        return new RankedMerges(list);
    }
}
