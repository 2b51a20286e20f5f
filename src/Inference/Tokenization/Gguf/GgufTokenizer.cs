using System.Text;
using Pipeline.Inference.Models.Gguf;
using Pipeline.Inference.Tokenization.Bpe;

namespace Pipeline.Inference.Tokenization.Gguf;

/// <summary>
/// The tokenizer stored in a GGUF file's metadata, encoding as llama.cpp does: model
/// <c>llama</c> is SentencePiece BPE by piece scores with byte fallback (a space prefixed to the
/// text and after each special token, spaces as '▁'); model <c>gpt2</c> is byte-level BPE by merge
/// rank after the regex pre-tokenizer named by <c>tokenizer.ggml.pre</c>. Control, unknown and
/// user-defined tokens written in the text are matched as themselves. Immutable; thread-safe.
/// </summary>
internal sealed class GgufTokenizer : ITokenizer
{
    // End-of-turn token texts llama.cpp also treats as ends of generation when the vocabulary has them.
    private static readonly string[] EndOfTurnTexts =
        ["<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<|end_of_text|>"];

    private readonly AddedTokenSplitter _specialTokens;
    private readonly TokenTable _table;
    private readonly ScoredMerges? _scored;          // model llama
    private readonly RankedMerges? _ranked;          // model gpt2
    private readonly CodePointRegex[] _preTokenizer; // model gpt2
    private readonly Dictionary<string, int> _idOfPiece;
    private readonly int[] _idOfAlphabetChar;        // model gpt2: id of each single-character piece below U+0200, or -1
    private readonly bool _ignoreMerges;
    private readonly bool _addSpacePrefix;
    private readonly int _bosId;
    private readonly int _eosId;
    private readonly bool _addBos;
    private readonly bool _addEos;

    private GgufTokenizer(GgufFile gguf)
    {
        string file = gguf.Path;
        Model = gguf.GetValue("tokenizer.ggml.model").AsString();
        var tokens = gguf.GetValue("tokenizer.ggml.tokens").AsStringArray();
        int count = tokens.Count;
        var types = gguf.TryGetValue("tokenizer.ggml.token_type", out var typeValue) ? typeValue.AsInt32Array() : null;
        if (types is not null && types.Length != count)
        {
            throw new InvalidDataException($"GGUF file '{file}': tokenizer.ggml.token_type has {types.Length} entries for {count} tokens.");
        }

        _idOfPiece = new Dictionary<string, int>(count, StringComparer.Ordinal);
        for (int id = 0; id < count; id++)
        {
            _idOfPiece.TryAdd(tokens[id], id); // llama.cpp's token_to_id keeps the first of duplicate pieces
        }

        _bosId = OptionalId(gguf, "tokenizer.ggml.bos_token_id", count) ?? -1;
        _eosId = OptionalId(gguf, "tokenizer.ggml.eos_token_id", count) ?? -1;
        int? unknownId = OptionalId(gguf, "tokenizer.ggml.unknown_token_id", count);
        _addEos = OptionalBool(gguf, "tokenizer.ggml.add_eos_token") ?? false;
        _addSpacePrefix = OptionalBool(gguf, "tokenizer.ggml.add_space_prefix") ?? true;

        var type = new GgufTokenType[count];
        for (int id = 0; id < count; id++)
        {
            type[id] = types is null ? GgufTokenType.Normal : (GgufTokenType)types[id];
        }

        bool byteLevel;
        switch (Model)
        {
            case "llama":
                byteLevel = false;
                var scores = gguf.TryGetValue("tokenizer.ggml.scores", out var scoreValue) ? scoreValue.AsSingleArray().ToArray() : new float[count];
                var byteIds = new int[256];
                for (int b = 0; b < 256; b++)
                {
                    byteIds[b] = _idOfPiece.TryGetValue($"<0x{b:X2}>", out int id) ? id
                        : _idOfPiece.TryGetValue(((char)b).ToString(), out id) ? id
                        : unknownId ?? throw new InvalidDataException($"GGUF file '{file}': no piece for byte 0x{b:X2} and no unknown token.");
                }

                _scored = new ScoredMerges(_idOfPiece, scores, byteIds);
                _preTokenizer = [];
                _idOfAlphabetChar = [];
                _addBos = OptionalBool(gguf, "tokenizer.ggml.add_bos_token") ?? true;
                break;
            case "gpt2":
                byteLevel = true;
                string pre = gguf.TryGetValue("tokenizer.ggml.pre", out var preValue) ? preValue.AsString() : "default";
                var (patterns, ignoreMerges, addsBos) = GgufPreTokenizers.For(pre, file);
                _preTokenizer = [.. patterns.Select(p => new CodePointRegex(p))];
                _ignoreMerges = ignoreMerges;
                _ranked = ReadMerges(gguf, file);
                _idOfAlphabetChar = new int[0x200];
                for (int c = 0; c < _idOfAlphabetChar.Length; c++)
                {
                    _idOfAlphabetChar[c] = _idOfPiece.TryGetValue(((char)c).ToString(), out int id) ? id : -1;
                }

                _addBos = OptionalBool(gguf, "tokenizer.ggml.add_bos_token") ?? addsBos;
                break;
            default:
                throw new NotSupportedException($"GGUF file '{file}': tokenizer.ggml.model \"{Model}\" is not supported (only llama and gpt2 are).");
        }

        if (_addBos && _bosId < 0)
        {
            throw new InvalidDataException($"GGUF file '{file}': the tokenizer adds BOS but names no valid tokenizer.ggml.bos_token_id.");
        }

        // Control and unknown tokens are special (no text); user-defined ones are matched in text but decode as themselves.
        var special = new bool[count];
        var pieces = new string[count];
        var bytes = new byte[count][];
        var matched = new List<AddedToken>();
        // llama.cpp gives Phi-3's special tokens rstrip (as its tokenizer.json does): whitespace after them is swallowed.
        bool phi3 = gguf.Architecture is "phi3" or "phi-3";
        for (int id = 0; id < count; id++)
        {
            pieces[id] = tokens[id];
            special[id] = type[id] is GgufTokenType.Control or GgufTokenType.Unknown;
            if (type[id] is GgufTokenType.Control or GgufTokenType.Unknown or GgufTokenType.UserDefined)
            {
                bool stripRight = phi3 && tokens[id] is not ("<unk>" or "<s>" or "<|endoftext|>");
                matched.Add(new AddedToken(tokens[id], id, StripRight: stripRight));
            }

            bytes[id] = special[id] || type[id] == GgufTokenType.Unused ? []
                : type[id] == GgufTokenType.UserDefined ? Encoding.UTF8.GetBytes(tokens[id])
                : type[id] == GgufTokenType.Byte && TryParseByte(tokens[id], out byte b) ? [b]
                : byteLevel ? (ByteLevelAlphabet.TryDecode(tokens[id], out var raw) ? raw : Encoding.UTF8.GetBytes(tokens[id]))
                : Encoding.UTF8.GetBytes(tokens[id].Replace('\u2581', ' '));
        }

        // SentencePiece text starts with the prefixed space, which decoding drops again.
        byte[][]? bytesAtStart = null;
        if (!byteLevel && _addSpacePrefix)
        {
            bytesAtStart = new byte[count][];
            for (int id = 0; id < count; id++)
            {
                bytesAtStart[id] = bytes[id] is [(byte)' ', ..] ? bytes[id][1..] : bytes[id];
            }
        }

        _specialTokens = new AddedTokenSplitter(matched);
        _table = new TokenTable(pieces, bytes, bytesAtStart, special, _bosId);

        var ends = new List<int>();
        foreach (string key in new[] { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" })
        {
            if (OptionalId(gguf, key, count) is int id && !ends.Contains(id))
            {
                ends.Add(id);
            }
        }

        foreach (string text in EndOfTurnTexts)
        {
            if (_idOfPiece.TryGetValue(text, out int id) && type[id] is GgufTokenType.Control or GgufTokenType.UserDefined && !ends.Contains(id))
            {
                ends.Add(id);
            }
        }

        EndIds = ends;
        ChatTemplate = gguf.TryGetValue("tokenizer.chat_template", out var template) ? template.AsString() : null;
        BosToken = _bosId >= 0 ? tokens[_bosId] : null;
        EosToken = _eosId >= 0 ? tokens[_eosId] : null;
    }

    /// <summary><c>tokenizer.ggml.model</c>: "llama" or "gpt2".</summary>
    public string Model { get; }

    public int VocabSize => _table.Count;

    public int? BosId => _addBos ? _bosId : null;

    public IReadOnlyList<int> EndIds { get; }

    /// <summary><c>tokenizer.chat_template</c> (Jinja), or null.</summary>
    public string? ChatTemplate { get; }

    /// <summary>The bos token's text (for chat templates), or null.</summary>
    public string? BosToken { get; }

    /// <summary>The eos token's text, or null.</summary>
    public string? EosToken { get; }

    /// <summary>Reads the tokenizer of the GGUF file at <paramref name="path"/>.</summary>
    public static GgufTokenizer Load(string path)
    {
        using var gguf = GgufFile.Open(path);
        return FromMetadata(gguf);
    }

    /// <summary>Reads the tokenizer from an open GGUF file's metadata (the file may be closed afterwards).</summary>
    public static GgufTokenizer FromMetadata(GgufFile gguf)
    {
        ArgumentNullException.ThrowIfNull(gguf);
        return new GgufTokenizer(gguf);
    }

    public IReadOnlyList<int> Encode(string text, bool addSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecial && _addBos)
        {
            ids.Add(_bosId);
        }

        bool afterSpecial = true; // llama.cpp prefixes a space to the text and to text after a special token
        foreach (var (fragment, specialId) in _specialTokens.Split(text))
        {
            if (specialId >= 0)
            {
                ids.Add(specialId);
                afterSpecial = true;
                continue;
            }

            if (_scored is not null)
            {
                string escaped = (_addSpacePrefix && afterSpecial ? " " + fragment : fragment).Replace(' ', '\u2581');
                _scored.Encode(escaped, ids);
            }
            else
            {
                foreach (string word in GgufPreTokenizers.Split(fragment, _preTokenizer))
                {
                    EncodeByteLevelWord(ByteLevelAlphabet.Spell(Encoding.UTF8.GetBytes(word)), ids);
                }
            }

            afterSpecial = false;
        }

        if (addSpecial && _addEos && _eosId >= 0)
        {
            ids.Add(_eosId);
        }

        return ids;
    }

    public string Decode(IReadOnlyList<int> ids) => _table.Decode(ids, skipSpecial: true);

    /// <summary>Decodes with special tokens written as their text.</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecial) => _table.Decode(ids, skipSpecial);

    public ReadOnlySpan<byte> TokenBytes(int previousId, int id) => _table.TokenBytes(previousId, id);

    public string PieceOf(int id) => _table.PieceOf(id);

    public bool IsSpecial(int id) => _table.IsSpecial(id);

    private void EncodeByteLevelWord(string word, List<int> output)
    {
        if (_ignoreMerges && _idOfPiece.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }

        var symbols = new List<int>(word.Length);
        foreach (char c in word)
        {
            symbols.Add(_idOfAlphabetChar[c]); // every character of the byte alphabet is below U+0200
        }

        _ranked!.Apply(symbols);
        foreach (int id in symbols)
        {
            // llama.cpp drops a byte whose character is not a piece; a complete vocabulary has them all.
            if (id >= 0)
            {
                output.Add(id);
            }
        }
    }

    private RankedMerges ReadMerges(GgufFile gguf, string file)
    {
        var merges = gguf.GetValue("tokenizer.ggml.merges").AsStringArray();
        var list = new List<(int, int, int)>(merges.Count);
        foreach (string merge in merges)
        {
            int space = merge.IndexOf(' ', 1);
            if (space <= 0 || space == merge.Length - 1)
            {
                throw new InvalidDataException($"GGUF file '{file}': tokenizer.ggml.merges entry \"{merge}\" is not two pieces separated by a space.");
            }

            string left = merge[..space];
            string right = merge[(space + 1)..];
            // A merge whose pieces are not all in the vocabulary can never apply to ids; it keeps its rank slot.
            if (_idOfPiece.TryGetValue(left, out int l) && _idOfPiece.TryGetValue(right, out int r) && _idOfPiece.TryGetValue(left + right, out int m))
            {
                list.Add((l, r, m));
            }
            else
            {
                list.Add((-1, -1, -1));
            }
        }

        return new RankedMerges(list);
    }

    private static int? OptionalId(GgufFile gguf, string key, int count)
    {
        if (!gguf.TryGetValue(key, out var value))
        {
            return null;
        }

        long id = value.AsInt64();
        // llama.cpp writes -1 (as uint32 0xFFFFFFFF) for "none".
        return id >= 0 && id < count ? (int)id : null;
    }

    private static bool? OptionalBool(GgufFile gguf, string key) => gguf.TryGetValue(key, out var value) ? value.AsBool() : null;

    private static bool TryParseByte(string piece, out byte value)
    {
        value = 0;
        return piece is { Length: 6 } && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
