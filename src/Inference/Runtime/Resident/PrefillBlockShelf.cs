using System.Collections.Concurrent;
using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// A model's float16 prefill blocks that no call's rows hold now (see <see cref="PrefillBlock"/>): a
/// prefill call rents one, its rows give it back as a pool takes them. Every block has the fixed
/// prefill shape (rows, one attention block of width); blocks are allocated on first need and freed
/// only with the model, so nothing is freed on the device while graphs may be capturing.
/// </summary>
internal sealed class PrefillBlockShelf(DeviceMemory memory, LlamaConfig config, int rows, int width) : IDisposable
{
    private readonly ConcurrentBag<PrefillBlock> _free = [];
    private readonly ConcurrentBag<PrefillBlock> _made = [];

    public DeviceMemory Memory { get; } = memory;
    public LlamaConfig Config { get; } = config;
    public int Rows { get; } = rows;
    public int Width { get; } = width;

    /// <summary>Every layer's keys and values, float16, [rows, kv_heads, width, head_dim] each.</summary>
    public long BlockBytes => 2L * Config.Layers * Rows * Config.KvHeads * Width * Config.HeadDim * sizeof(ushort);

    /// <summary>Blocks made so far.</summary>
    public int Made => _made.Count;

    /// <summary>Blocks on the shelf now (made and given back).</summary>
    public int Free => _free.Count;

    public PrefillBlock Rent()
    {
        if (_free.TryTake(out var block)) return block;
        block = new PrefillBlock(this);
        _made.Add(block);
        return block;
    }

    public void Return(PrefillBlock block)
    {
        block.Reset();
        _free.Add(block);
    }

    public void Dispose()
    {
        while (_made.TryTake(out var block)) block.Free();
        _free.Clear();
    }
}
