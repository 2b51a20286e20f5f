using System.Text.Json;

namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>
/// A tokenizer read from a Hugging Face <c>tokenizer.json</c> (and <c>tokenizer_config.json</c>
/// beside it): added tokens matched in the text, then normalizer, pre-tokenizer and BPE model on
/// the text between them, then the post-processor's special tokens. Byte-level BPE (Llama 3, Qwen,
/// GPT-2) and SentencePiece-style BPE with byte fallback (Llama 2, Mistral, TinyLlama) are both
/// this class with different components. Immutable and safe to share between threads.
/// </summary>
internal sealed class HuggingFaceTokenizer : ITokenizer
{
    private static readonly string[] EndTokenTexts =
        ["</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>", "<|end|>", "<eos>", "<end_of_turn>"];

    private readonly AddedTokenSplitter _addedTokens;
    private readonly TextNormalizer _normalizer;
    private readonly PreTokenizer _preTokenizer;
    private readonly BpeModel _model;
    private readonly TokenTable _table;
    private readonly int[] _prefixIds; // what addSpecial puts before the text (BOS), per the post-processor
    private readonly int[] _suffixIds; // and after it (EOS, for tokenizers configured so)

    private HuggingFaceTokenizer(
        AddedTokenSplitter addedTokens, TextNormalizer normalizer, PreTokenizer preTokenizer, BpeModel model, TokenTable table,
        int[] prefixIds, int[] suffixIds, IReadOnlyList<int> endIds)
    {
        _addedTokens = addedTokens;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _table = table;
        _prefixIds = prefixIds;
        _suffixIds = suffixIds;
        EndIds = endIds;
    }

    public int VocabSize => _table.Count;

    public int? BosId => _prefixIds.Length > 0 ? _prefixIds[0] : null;

    public IReadOnlyList<int> EndIds { get; }

    /// <summary>The <c>chat_template</c> of tokenizer_config.json (Jinja), or null.</summary>
    public string? ChatTemplate { get; private init; }

    /// <summary>The text of the configured bos token (for chat templates), or null.</summary>
    public string? BosToken { get; private init; }

    /// <summary>The text of the configured eos token, or null.</summary>
    public string? EosToken { get; private init; }

    /// <summary>Reads <c>tokenizer.json</c> and, when present, <c>tokenizer_config.json</c> from <paramref name="folder"/>.</summary>
    public static HuggingFaceTokenizer LoadFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        string config = Path.Combine(folder, "tokenizer_config.json");
        return Load(Path.Combine(folder, "tokenizer.json"), File.Exists(config) ? config : null);
    }

    public static HuggingFaceTokenizer Load(string tokenizerJsonPath, string? tokenizerConfigPath)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJsonPath);
        var settings = TokenizerConfig.Read(tokenizerConfigPath);
        using var document = ParseJson(tokenizerJsonPath);
        var root = new JsonComponent(document.RootElement, tokenizerJsonPath, "tokenizer.json");

        var model = BpeModel.Read(root.Child("model"));
        var normalizer = TextNormalizer.Read(root.Child("normalizer"));
        var preTokenizer = PreTokenizer.Read(root.Child("pre_tokenizer"));
        var decoderComponent = root.Child("decoder");
        if (decoderComponent.IsNull)
        {
            throw decoderComponent.Malformed("is missing: without a decoder, ids cannot be turned back into text exactly");
        }

        var decoder = TokenDecoder.Read(decoderComponent);

        var added = new List<AddedToken>();
        var specialIds = new HashSet<int>();
        foreach (var item in root.Child("added_tokens").IsNull ? [] : root.Items("added_tokens"))
        {
            int id = item.Int("id", absent: -1);
            string content = item.RequiredString("content");
            if (id < 0)
            {
                throw item.Malformed("has no id");
            }

            added.Add(new AddedToken(content, id, item.Bool("lstrip", absent: false), item.Bool("rstrip", absent: false)));
            if (item.Bool("special", absent: false))
            {
                specialIds.Add(id);
            }
        }

        int count = 1 + Math.Max(model.Vocabulary.Count == 0 ? -1 : model.Vocabulary.Values.Max(), added.Count == 0 ? -1 : added.Max(t => t.Id));
        var pieces = new string[count];
        Array.Fill(pieces, string.Empty);
        foreach (var (piece, id) in model.Vocabulary)
        {
            pieces[id] = piece;
        }

        var idOfContent = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (piece, id) in model.Vocabulary)
        {
            idOfContent.TryAdd(piece, id);
        }

        foreach (var token in added)
        {
            pieces[token.Id] = token.Content;
            idOfContent[token.Content] = token.Id;
        }

        var special = new bool[count];
        var bytes = new byte[count][];
        foreach (int id in specialIds)
        {
            special[id] = true;
        }

        for (int id = 0; id < count; id++)
        {
            bytes[id] = special[id] ? [] : decoder.Bytes(pieces[id]);
        }

        byte[][]? bytesAtStart = null;
        if (decoder.StartStripCount > 0)
        {
            bytesAtStart = new byte[count][];
            for (int id = 0; id < count; id++)
            {
                bytesAtStart[id] = decoder.BytesAtStart(bytes[id]);
            }
        }

        int? configBos = Lookup(settings.BosToken, idOfContent, tokenizerConfigPath, "bos_token");
        int? configEos = Lookup(settings.EosToken, idOfContent, tokenizerConfigPath, "eos_token");
        var (prefix, suffix) = PostProcessor.Read(root.Child("post_processor"));
        // LlamaTokenizer-style configs decide BOS/EOS themselves (transformers rebuilds the template from them).
        if (settings.FlagsDecideSpecialTokens && settings.AddBosToken is bool addBos)
        {
            prefix = addBos && configBos is int b ? [b] : [];
        }

        if (settings.FlagsDecideSpecialTokens && settings.AddEosToken is bool addEos)
        {
            suffix = addEos && configEos is int e ? [e] : [];
        }

        int startMarker = configBos ?? (prefix.Length > 0 ? prefix[0] : -1);
        var table = new TokenTable(pieces, bytes, bytesAtStart, special, startMarker);
        // Without a configured eos (a bare tokenizer.json), the usual end tokens among the special ones end generation.
        int[] endIds = configEos is int eos ? [eos]
            : [.. EndTokenTexts.Where(idOfContent.ContainsKey).Select(t => idOfContent[t]).Where(id => special[id]).Distinct()];
        return new HuggingFaceTokenizer(new AddedTokenSplitter(added), normalizer, preTokenizer, model, table, prefix, suffix, endIds)
        {
            ChatTemplate = settings.ChatTemplate,
            BosToken = settings.BosToken,
            EosToken = settings.EosToken,
        };
    }

    public IReadOnlyList<int> Encode(string text, bool addSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecial)
        {
            ids.AddRange(_prefixIds);
        }

        bool atTextStart = true;
        foreach (var (segment, addedId) in _addedTokens.Split(text))
        {
            if (addedId >= 0)
            {
                ids.Add(addedId);
            }
            else
            {
                foreach (var word in _preTokenizer.Split(_normalizer.Normalize(segment), atTextStart))
                {
                    _model.Encode(word.Text, ids);
                }
            }

            atTextStart = false;
        }

        if (addSpecial)
        {
            ids.AddRange(_suffixIds);
        }

        return ids;
    }

    public string Decode(IReadOnlyList<int> ids) => _table.Decode(ids, skipSpecial: true);

    /// <summary>Decodes with special tokens written as their text (Hugging Face's skip_special_tokens=False).</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecial) => _table.Decode(ids, skipSpecial);

    public ReadOnlySpan<byte> TokenBytes(int previousId, int id) => _table.TokenBytes(previousId, id);

    public string PieceOf(int id) => _table.PieceOf(id);

    public bool IsSpecial(int id) => _table.IsSpecial(id);

    internal static JsonDocument ParseJson(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    private static int? Lookup(string? token, Dictionary<string, int> idOfContent, string? configPath, string key) =>
        token is null ? null
        : idOfContent.TryGetValue(token, out int id) ? id
        : throw new InvalidDataException($"'{configPath}': {key} \"{token}\" is not a token of the tokenizer.");
}
