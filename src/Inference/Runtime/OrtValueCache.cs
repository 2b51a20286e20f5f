using Microsoft.ML.OnnxRuntime;

namespace Pipeline.Inference.Runtime;

/// <summary>
/// A workspace's model-call tensors, kept from call to call: the <see cref="OrtValue"/> over a slot's
/// buffer is made again only when the buffer, its extent or the shape changes (a decode step's shapes
/// change when its batch or the staged past's stride does, not every step). Making and disposing the
/// ~25 tensors of a tiny model's step was a tenth of its CPU call. Owns what it holds: a value pins its
/// buffer until it is replaced or the cache is disposed.
/// </summary>
internal sealed class OrtValueCache : IDisposable
{
    private Entry?[] _entries = [];

    /// <summary>A float, long or int tensor of <paramref name="shape"/> over <paramref name="array"/>[start, start + length), for slot <paramref name="slot"/>.</summary>
    public OrtValue Get<T>(int slot, T[] array, int start, int length, long[] shape) where T : unmanaged
    {
        if (slot >= _entries.Length) Array.Resize(ref _entries, slot + 8);
        var held = _entries[slot];
        if (held is not null && ReferenceEquals(held.Array, array) && held.Start == start && held.Length == length && held.Shape.AsSpan().SequenceEqual(shape))
            return held.Value;
        held?.Value.Dispose();
        _entries[slot] = null;
        var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, array.AsMemory(start, length), shape);
        _entries[slot] = new Entry(array, start, length, shape, value);
        return value;
    }

    public void Dispose()
    {
        foreach (var held in _entries) held?.Value.Dispose();
        _entries = [];
    }

    private sealed record Entry(object Array, int Start, int Length, long[] Shape, OrtValue Value);
}
