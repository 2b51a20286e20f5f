using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// One sequence's keys and values for every layer, laid out [kv_heads, capacity, head_dim] per
/// layer so that appending a position writes in place. Owned by exactly one actor at a time and
/// handed on by message; growth doubles up to its maximum capacity: the positions its request
/// reserved from the host's KV budget (at most the model's context length), so the bytes it holds
/// never exceed its reservation. The pipeline makes each cache at its reservation (it never grows);
/// growth serves callers that start smaller. While a sequence decodes, a holder may keep some or all
/// of its positions (a resident pool, a decode workspace's staged past: <see cref="IHeldPositions"/>),
/// and they come back before anything reads them.
/// </summary>
internal sealed class KvCache : IDisposable
{
    private readonly LlamaConfig _config;
    private readonly KvMemoryAccount? _account;
    private readonly KvArrayShelf? _shelf;
    private float[][] _keys;
    private float[][] _values;
    private bool _disposed;
    // Positions written into the arrays since they were last all zero (what the shelf must clear).
    private int _written;

    /// <param name="maxCapacity">Positions the cache may ever hold (null: the model's context length).</param>
    /// <param name="shelf">Where its arrays come from when one of its capacity is there, and go back to when it is disposed (see <see cref="KvArrayShelf"/>); the caller must own the shelf's taking side.</param>
    public KvCache(LlamaConfig config, KvMemoryAccount? account = null, int initialCapacity = 64, int? maxCapacity = null, KvArrayShelf? shelf = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _account = account;
        _shelf = shelf;
        MaxCapacity = Math.Clamp(maxCapacity ?? config.SeqLen, 1, config.SeqLen);
        Capacity = Math.Clamp(initialCapacity, 1, MaxCapacity);
        if (shelf is null || !shelf.TryTake(Capacity, out _keys, out _values))
            (_keys, _values) = (Allocate(Capacity), Allocate(Capacity));
        _account?.CacheOpened();
        _account?.Add(Bytes);
    }

    /// <summary>Positions written so far.</summary>
    public int Length { get; private set; }
    public int Capacity { get; private set; }
    /// <summary>The most positions this cache will ever hold: appending beyond it throws rather than grow.</summary>
    public int MaxCapacity { get; }
    public long Bytes => Capacity * BytesPerPosition(_config);

    /// <summary>
    /// Bytes of this cache's own arrays: <see cref="Bytes"/>, or none while a holder keeps every
    /// position (<see cref="HoldAll"/>: the arrays went back, and come again when a reader asks).
    /// </summary>
    internal long ArrayBytes => _keys.Length == 0 ? 0 : Bytes;

    /// <summary>Bytes one position takes in a cache of <paramref name="config"/>: keys and values of every layer, float32.</summary>
    public static long BytesPerPosition(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return 2L * config.Layers * config.KvHeads * config.HeadDim * sizeof(float);
    }

    internal ReadOnlySpan<float> Keys(int layer, int head)
    {
        Materialize();
        return _keys[layer].AsSpan(head * Capacity * _config.HeadDim, Length * _config.HeadDim);
    }

    internal ReadOnlySpan<float> Values(int layer, int head)
    {
        Materialize();
        return _values[layer].AsSpan(head * Capacity * _config.HeadDim, Length * _config.HeadDim);
    }

    /// <summary>Layer <paramref name="layer"/>'s keys as stored, [kv_heads, <see cref="Capacity"/>, head_dim] (for uploading to a resident pool).</summary>
    internal ReadOnlySpan<float> KeyLayer(int layer)
    {
        Materialize();
        return _keys[layer];
    }

    /// <inheritdoc cref="KeyLayer"/>
    internal ReadOnlySpan<float> ValueLayer(int layer)
    {
        Materialize();
        return _values[layer];
    }

    // Positions [HostLength, Length) are held elsewhere (a resident pool's slot, where decode calls
    // wrote them) until something reads this cache: then the holder writes them back here first.
    private IHeldPositions? _holder;
    private string? _lost;

    /// <summary>Positions whose keys and values are in this cache's own memory; the rest, up to <see cref="Length"/>, a holder keeps.</summary>
    internal int HostLength { get; private set; }

    /// <summary>Whether positions past <see cref="HostLength"/> are held elsewhere (see <see cref="AdvanceHeld"/>).</summary>
    internal bool HasHeldPositions => _holder is not null;

    internal bool IsDisposed => _disposed;

    /// <summary>
    /// Counts <paramref name="count"/> new positions that <paramref name="holder"/> keeps (a resident
    /// pool, whose decode calls wrote them where it runs): nothing is copied here until a reader asks,
    /// and then the holder writes them back (<see cref="WriteHeld"/>). The reservation's limits hold as for an append.
    /// </summary>
    internal void AdvanceHeld(int count, IHeldPositions holder)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(holder);
        CheckLimits(Length + count);
        if (_holder is { } other && !ReferenceEquals(other, holder)) Materialize();
        if (_holder is null) HostLength = Length;
        _holder = holder;
        Length += count;
    }

    /// <summary>Who keeps the positions past <see cref="HostLength"/>, or null when this cache holds them all.</summary>
    internal IHeldPositions? Holder => _holder;

    /// <summary>
    /// Hands the held positions to <paramref name="holder"/>, which has copied them where it keeps them
    /// (a resident pool taking a prefill's positions on the device); the old holder lets go of them.
    /// </summary>
    internal void TransferHeld(IHeldPositions holder)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(holder);
        if (_holder is not { } old) throw new InvalidOperationException("no held positions to hand over");
        _holder = holder;
        old.Drop(this);
    }

    /// <summary>
    /// Counts <paramref name="count"/> new positions and hands every position to
    /// <paramref name="holder"/>, which has them all (a decode workspace's staged past, where the
    /// kernel wrote the new ones beside the rest): the cache gives its own arrays back (to the
    /// shelf), so the positions are not kept twice, and takes new ones when a reader asks
    /// (<see cref="Materialize"/>). Positions another holder keeps must have come back first.
    /// </summary>
    internal void HoldAll(int count, IHeldPositions holder)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(holder);
        if (_holder is { } other && !ReferenceEquals(other, holder))
            throw new InvalidOperationException("another holder keeps some of this cache's positions");
        CheckLimits(Length + count);
        _holder = holder;
        Length += count;
        HostLength = 0;
        GiveArraysBack();
    }

    /// <summary>
    /// The holder writing back layer <paramref name="layer"/>'s held positions [<see cref="HostLength"/>,
    /// <see cref="Length"/>): keys and values as [kv_heads, count, head_dim]. After the last layer,
    /// <paramref name="done"/> makes them this cache's own.
    /// </summary>
    internal void WriteHeld(int layer, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, bool done)
        => WriteHeld(layer, keys, values, (Length - HostLength) * _config.HeadDim, done);

    /// <summary>
    /// <see cref="WriteHeld(int, ReadOnlySpan{float}, ReadOnlySpan{float}, bool)"/> from a layout
    /// whose heads lie <paramref name="headPitch"/> floats apart (a staged past's rows).
    /// </summary>
    internal void WriteHeld(int layer, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int headPitch, bool done)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureCapacity(Length);
        _written = Math.Max(_written, Length); // before the copy: a write-back that stops half way still counts
        int hd = _config.HeadDim, heads = _config.KvHeads, count = Length - HostLength;
        for (int h = 0; h < heads; h++)
        {
            int dst = (h * Capacity + HostLength) * hd;
            keys.Slice(h * headPitch, count * hd).CopyTo(_keys[layer].AsSpan(dst));
            values.Slice(h * headPitch, count * hd).CopyTo(_values[layer].AsSpan(dst));
        }
        if (done) HostLength = Length;
    }

    /// <summary>The holder could not write its positions back (<paramref name="why"/>): every later read throws instead of seeing stale numbers.</summary>
    internal void LoseHeld(string why)
    {
        var holder = _holder;
        _holder = null;
        _lost = why;
        holder?.Drop(this);
    }

    /// <summary>Brings held positions back (their holder writes them) before this cache's memory is read or written.</summary>
    internal void Materialize()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_lost is { } why) throw new InvalidOperationException($"this sequence's last positions were lost: {why}");
        if (_holder is not { } holder) return;
        _holder = null;
        holder.WriteBack(this);
        if (HostLength != Length) throw new InvalidOperationException($"the holder wrote back {HostLength} of {Length} positions");
    }

    /// <summary>
    /// Appends <paramref name="count"/> positions taken from a present tensor
    /// [batch, kv_heads, total, head_dim] at (row, start).
    /// </summary>
    internal void Append(ReadOnlySpan<float> presentKeys, ReadOnlySpan<float> presentValues, int layer, int row, int total, int start, int count, bool lastLayer)
    {
        Materialize();
        EnsureCapacity(Length + count);
        _written = Math.Max(_written, Length + count);
        int hd = _config.HeadDim, heads = _config.KvHeads;
        for (int h = 0; h < heads; h++)
        {
            int src = ((row * heads + h) * total + start) * hd;
            int dst = (h * Capacity + Length) * hd;
            presentKeys.Slice(src, count * hd).CopyTo(_keys[layer].AsSpan(dst));
            presentValues.Slice(src, count * hd).CopyTo(_values[layer].AsSpan(dst));
        }
        if (lastLayer) HostLength = Length += count;
    }

    /// <summary>A deep copy with its own memory (for replaying a sequence from the same state).</summary>
    internal KvCache Clone()
    {
        Materialize();
        var copy = new KvCache(_config, _account, Capacity, MaxCapacity);
        for (int l = 0; l < _keys.Length; l++)
        {
            _keys[l].CopyTo(copy._keys[l], 0);
            _values[l].CopyTo(copy._values[l], 0);
        }
        copy.HostLength = copy.Length = copy._written = Length;
        return copy;
    }

    private void CheckLimits(int needed)
    {
        if (needed > _config.SeqLen)
            throw new InvalidOperationException($"sequence of {needed} positions exceeds the context length {_config.SeqLen}");
        if (needed > MaxCapacity)
            throw new InvalidOperationException($"sequence of {needed} positions exceeds the {MaxCapacity} positions its KV cache reserved");
    }

    private void EnsureCapacity(int needed)
    {
        CheckLimits(needed);
        if (_keys.Length == 0)
        {
            // The arrays went back while a holder kept every position (HoldAll): new ones, as large as before.
            (_keys, _values) = (Allocate(Capacity), Allocate(Capacity));
            _written = 0;
        }
        if (needed <= Capacity) return;
        int capacity = Math.Min(MaxCapacity, Math.Max(needed, Capacity * 2));
        long before = Bytes;
        _keys = Regrow(_keys, capacity);
        _values = Regrow(_values, capacity);
        Capacity = capacity;
        _account?.Add(Bytes - before);
    }

    private float[][] Regrow(float[][] old, int capacity)
    {
        int hd = _config.HeadDim;
        var grown = Allocate(capacity);
        for (int l = 0; l < old.Length; l++)
            for (int h = 0; h < _config.KvHeads; h++)
                old[l].AsSpan(h * Capacity * hd, HostLength * hd).CopyTo(grown[l].AsSpan(h * capacity * hd));
        return grown;
    }

    private float[][] Allocate(int capacity)
    {
        var layers = new float[_config.Layers][];
        for (int l = 0; l < layers.Length; l++) layers[l] = new float[_config.KvHeads * capacity * _config.HeadDim];
        return layers;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        // Held positions are simply dropped: their holder sees a disposed cache and writes nothing.
        var holder = _holder;
        _holder = null;
        holder?.Drop(this);
        _account?.Remove(Bytes);
        _account?.CacheClosed();
        GiveArraysBack();
    }

    // Nothing here reads them again: a reader of a disposed cache throws, and one of a held cache
    // takes new arrays first (EnsureCapacity).
    private void GiveArraysBack()
    {
        if (_keys.Length > 0) _shelf?.Return(_keys, _values, Capacity, _written, _config.HeadDim);
        _keys = [];
        _values = [];
        _written = 0;
    }
}

/// <summary>Keeps some of a <see cref="KvCache"/>'s last positions (see <see cref="KvCache.AdvanceHeld"/>) and writes them back on demand.</summary>
internal interface IHeldPositions
{
    /// <summary>Writes <paramref name="cache"/>'s held positions back into it (<see cref="KvCache.WriteHeld"/>), on the thread of the cache's reader.</summary>
    void WriteBack(KvCache cache);

    /// <summary><paramref name="cache"/> no longer needs this holder (disposed, or its positions handed on); called once, on any thread.</summary>
    void Drop(KvCache cache) { }
}
