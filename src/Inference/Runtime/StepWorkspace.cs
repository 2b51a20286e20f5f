using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// Reusable buffers for model calls, owned by one calling actor (the model is shared; no buffer is
/// ever touched by two threads). It keeps the batch's past keys and values laid out as the model
/// wants them, [rows, kv_heads, past, head_dim], and remembers which cache fills each row and up
/// to where, so a step copies only what changed: a row whose sequence stayed in place gets its new
/// positions written, never its whole past again.
/// </summary>
internal sealed class StepWorkspace
{
    internal long[] InputIds = [];
    internal long[] PositionIds = [];
    internal long[] AttentionMask = [];
    internal float[] Logits = [];

    // The model's outputs for one step, per layer: new keys and values [rows, kv_heads, fed, head_dim].
    private float[][] _newKeys = [];
    private float[][] _newValues = [];

    private float[][] _keys = [];
    private float[][] _values = [];
    private KvCache?[] _rowCache = [];
    private int[] _rowLength = [];
    private int _rows;

    /// <summary>Past positions per row in the staged layout: a whole number of attention blocks.</summary>
    internal int PastStride { get; private set; }

    // Workspaces of the further calls a batch larger than the model's fixed row count is split into.
    private List<StepWorkspace>? _parts;

    /// <summary>The workspace of part <paramref name="index"/> of a split batch (part 0 is this one), kept across steps.</summary>
    internal StepWorkspace Part(int index)
    {
        if (index == 0) return this;
        _parts ??= [];
        while (_parts.Count < index) _parts.Add(new StepWorkspace());
        return _parts[index - 1];
    }

    internal static T[] Ensure<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new T[Math.Max(length, buffer.Length * 3 / 2)];
        return buffer;
    }

    internal float[] NewKeys(int layer) => _newKeys[layer];
    internal float[] NewValues(int layer) => _newValues[layer];

    /// <summary>Makes every layer's new-key and new-value buffer hold at least <paramref name="size"/> floats.</summary>
    internal void EnsureOutputs(int layers, int size)
    {
        if (_newKeys.Length != layers)
        {
            _newKeys = new float[layers][];
            _newValues = new float[layers][];
            for (int l = 0; l < layers; l++) { _newKeys[l] = []; _newValues[l] = []; }
        }
        for (int l = 0; l < layers; l++)
        {
            Ensure(ref _newKeys[l], size);
            Ensure(ref _newValues[l], size);
        }
    }

    internal float[] Keys(int layer) => _keys[layer];
    internal float[] Values(int layer) => _values[layer];

    /// <summary>
    /// Lays out the past of <paramref name="rows"/> in order, with a stride of
    /// <paramref name="neededPast"/> positions (whole blocks), in buffers of at least
    /// <paramref name="paddedRows"/> rows (rows past the real ones are padding the caller masks).
    /// Most steps copy nothing but the rows whose sequence changed.
    /// </summary>
    internal void Stage(IReadOnlyList<SequenceStep> rows, int neededPast, LlamaConfig c, int paddedRows)
    {
        int batch = rows.Count, kvh = c.KvHeads, hd = c.HeadDim;
        // Re-laid out when the past outgrows the stride (once every `block` steps of a growing
        // batch) or when the longest sequence left and the stride is a whole block too wide.
        bool restride = neededPast > PastStride || PastStride > neededPast;
        if (restride || paddedRows > _rows || _keys.Length != c.Layers)
        {
            PastStride = restride ? neededPast : PastStride;
            _rows = Math.Max(paddedRows, _rows);
            long size = (long)_rows * kvh * PastStride * hd;
            if (size > int.MaxValue) throw new InvalidOperationException("staged past exceeds 2^31 floats; lower the batch size");
            _keys = new float[c.Layers][];
            _values = new float[c.Layers][];
            for (int l = 0; l < c.Layers; l++) { _keys[l] = new float[size]; _values[l] = new float[size]; }
            _rowCache = new KvCache?[_rows];
            _rowLength = new int[_rows];
        }
        for (int b = 0; b < batch; b++)
        {
            var cache = rows[b].Cache;
            if (ReferenceEquals(_rowCache[b], cache) && _rowLength[b] == cache.Length) continue;
            // A new sequence in this row, or the row's sequence moved: copy its whole past, and
            // zero the rest of the row so that no stale number sits under the mask.
            for (int l = 0; l < c.Layers; l++)
                for (int h = 0; h < kvh; h++)
                {
                    int start = (b * kvh + h) * PastStride * hd;
                    var keys = _keys[l].AsSpan(start, PastStride * hd);
                    var values = _values[l].AsSpan(start, PastStride * hd);
                    cache.Keys(l, h).CopyTo(keys);
                    cache.Values(l, h).CopyTo(values);
                    keys[(cache.Length * hd)..].Clear();
                    values[(cache.Length * hd)..].Clear();
                }
            _rowCache[b] = cache;
            _rowLength[b] = cache.Length;
        }
    }

    /// <summary>Records that row <paramref name="row"/> now holds <paramref name="length"/> positions, after writing the new ones.</summary>
    internal void Advance(int row, int length) => _rowLength[row] = length;

    /// <summary>Forgets every row (after a failed call, say), so the next step copies afresh.</summary>
    internal void Forget()
    {
        Array.Clear(_rowCache);
        if (_parts is not null) foreach (var part in _parts) part.Forget();
    }

}
