namespace Pipeline.Inference.Tokenization;

/// <summary>
/// A tokenizer whose <see cref="EndIds"/> also hold the ids the model's own configuration says end
/// generation (Hugging Face <c>eos_token_id</c> in config.json / generation_config.json, an int or
/// a list: Llama 3 Instruct ends on both &lt;|eot_id|&gt; and &lt;|end_of_text|&gt;). Everything
/// else is the inner tokenizer's.
/// </summary>
internal sealed class ModelEndIdsTokenizer : ITokenizer
{
    private readonly ITokenizer _inner;

    public ModelEndIdsTokenizer(ITokenizer inner, IEnumerable<int> modelEndIds)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(modelEndIds);
        _inner = inner;
        EndIds = inner.EndIds.Concat(modelEndIds).Distinct().ToArray();
    }

    public int VocabSize => _inner.VocabSize;
    public int? BosId => _inner.BosId;
    public IReadOnlyList<int> EndIds { get; }
    public IReadOnlyList<int> Encode(string text, bool addSpecial) => _inner.Encode(text, addSpecial);
    public string Decode(IReadOnlyList<int> ids) => _inner.Decode(ids);
    public ReadOnlySpan<byte> TokenBytes(int previousId, int id) => _inner.TokenBytes(previousId, id);
    public string PieceOf(int id) => _inner.PieceOf(id);
    public bool IsSpecial(int id) => _inner.IsSpecial(id);
}
