namespace Pipeline.Inference.Chat;

/// <summary>
/// Python dict-key equality: <c>1</c>, <c>1.0</c> and <c>True</c> are one key. Keys are first reduced by
/// <see cref="HashKey"/> to a canonical CLR value; lists, dicts and other unhashable values are refused.
/// </summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static readonly PyKeyComparer Instance = new();

    private static readonly object NoneKey = new();

    public static bool IsHashable(object? key) =>
        key is null or bool or long or double or string or SafeString or System.Numerics.BigInteger || (key is ListValue { IsTuple: true } t && t.Items.TrueForAll(IsHashable));

    public static object HashKey(object? key) => key switch
    {
        null => NoneKey,
        bool b => b ? 1L : 0L,
        long l => l,
        System.Numerics.BigInteger i => PyOps.Normalize(i),
        double d when d == Math.Floor(d) && Math.Abs(d) < 9.2e18 => (long)d,
        double d => d,
        string s => s,
        SafeString s => s.Value,
        ListValue { IsTuple: true } t when t.Items.TrueForAll(IsHashable) => new TupleKey(t.Items.ConvertAll(HashKey)),
        _ => throw new ChatTemplateException($"unhashable type: '{PyOps.TypeName(key)}'"),
    };

    public new bool Equals(object? x, object? y) => x is TupleKey a && y is TupleKey b ? a.Items.SequenceEqual(b.Items, this) : object.Equals(x, y);

    public int GetHashCode(object obj)
    {
        if (obj is not TupleKey t) return obj.GetHashCode();
        var hash = new HashCode();
        foreach (var item in t.Items) hash.Add(GetHashCode(item));
        return hash.ToHashCode();
    }

    private sealed record TupleKey(List<object> Items);
}
