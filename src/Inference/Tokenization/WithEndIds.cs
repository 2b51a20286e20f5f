namespace Pipeline.Inference.Tokenization;

/// <summary>
/// A tokenizer whose end ids include those the model's configuration adds (Llama 3's
/// <c>generation_config.json</c> lists <c>&lt;|eot_id|&gt;</c> and <c>&lt;|eom_id|&gt;</c> beside the
/// tokenizer's eos). Everything else is the wrapped tokenizer's.
/// </summary>
internal sealed class WithEndIds : ITokenizer
{
    private readonly ITokenizer _inner;

    private WithEndIds(ITokenizer inner, IReadOnlyList<int> endIds)
    {
        _inner = inner;
        EndIds = endIds;
    }

    /// <summary>The tokenizer itself when <paramref name="extra"/> adds nothing new.</summary>
    public static ITokenizer Extend(ITokenizer tokenizer, IReadOnlyList<int> extra)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(extra);
        var ends = tokenizer.EndIds.ToList();
        foreach (int id in extra)
            if (!ends.Contains(id)) ends.Add(id);
        return ends.Count == tokenizer.EndIds.Count ? tokenizer : new WithEndIds(tokenizer, ends.ToArray());
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
