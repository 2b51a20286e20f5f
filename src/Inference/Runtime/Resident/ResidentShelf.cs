using System.Collections.Concurrent;
using Microsoft.ML.OnnxRuntime;
using Pipeline.Inference.Models;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// A model's resident pool parts that no pool holds now, and the layout every part has. Pools come
/// and go with workspaces (a pipeline's decode actor, each solo request of a bench); a part keeps its
/// memory and, with CUDA graphs, the graph captured over that memory, so the next pool reuses both
/// instead of allocating and capturing again. A part is held by one pool at a time: renting and
/// returning are the hand-off.
/// </summary>
internal sealed class ResidentShelf(DeviceMemory memory, LlamaConfig config, int rowsPerCall, int stride, Func<OrtIoBinding> newBinding, Func<int>? graphId,
    bool picksLastPosition = false, bool groupQuery = false, int elementBytes = sizeof(float))
    : IDisposable
{
    private readonly ConcurrentBag<ResidentPart> _free = [];
    private int _made;

    public DeviceMemory Memory { get; } = memory;
    public LlamaConfig Config { get; } = config;

    /// <summary>Slots per part: the rows of every call.</summary>
    public int RowsPerCall { get; } = rowsPerCall;

    /// <summary>Past positions per slot.</summary>
    public int Stride { get; } = stride;

    /// <summary>A new binding on the session resident calls run on.</summary>
    public Func<OrtIoBinding> NewBinding { get; } = newBinding;

    /// <summary>Rows of the small call over a part's first slots (0: none), and a new binding on its session.</summary>
    public int SmallRows { get; init; }
    public Func<OrtIoBinding>? NewSmallBinding { get; init; }

    /// <summary>Gives each new part its CUDA graph's id (unique within the session), or null without graphs.</summary>
    public Func<int>? GraphId { get; } = graphId;

    /// <summary>The graph takes the one-hot last_position input (the runner's graph); a decode call's is all ones.</summary>
    public bool PicksLastPosition { get; } = picksLastPosition;

    /// <summary>
    /// The decode graph attends with GroupQueryAttention: each row's length goes in as
    /// <c>seqlens_k</c> instead of a mask, and the kernel writes the new position into the slot
    /// itself (its present outputs are bound to the pasts), so the pool only reads it back.
    /// </summary>
    public bool GroupQuery { get; } = groupQuery;

    /// <summary>Bytes of one past element: 4 (float32) or 2 (float16, the GroupQueryAttention graph on CUDA).</summary>
    public int ElementBytes { get; } = elementBytes is 2 or 4 ? elementBytes : throw new ArgumentOutOfRangeException(nameof(elementBytes));

    /// <summary>Where the model's resident calls spend their time; pools add their uploads, part rents and write-backs.</summary>
    public ResidentPhaseTimes? Phases { get; init; }

    /// <summary>Parts made so far (each allocated once, then reused).</summary>
    public int Made => Volatile.Read(ref _made);

    public long SlotBytes => (long)Config.KvHeads * Stride * Config.HeadDim * ElementBytes;
    public long NewBytes => (long)RowsPerCall * Config.KvHeads * Config.HeadDim * ElementBytes;
    public long LogitsBytes => (long)RowsPerCall * Config.VocabSize * sizeof(float);
    private long InputBytes => (long)RowsPerCall * (GroupQuery ? 2 * sizeof(long) + sizeof(int) : (2 + Stride + 1) * sizeof(long));
    public long PartBytes => 2L * Config.Layers * (RowsPerCall * SlotBytes + NewBytes) + InputBytes + LogitsBytes;

    /// <summary>An empty shelf of the same layout without the small call (its parts are made without its binding).</summary>
    public ResidentShelf WithoutSmallCalls() =>
        new(Memory, Config, RowsPerCall, Stride, NewBinding, GraphId, PicksLastPosition, GroupQuery, ElementBytes) { Phases = Phases };

    /// <summary>A part from the shelf, or a new one.</summary>
    public ResidentPart Rent()
    {
        if (_free.TryTake(out var part)) return part;
        part = new ResidentPart(this);
        Interlocked.Increment(ref _made);
        return part;
    }

    public void Return(ResidentPart part) => _free.Add(part);

    /// <summary>Frees the parts on the shelf (a part still held by a pool is freed with the process).</summary>
    public void Dispose()
    {
        while (_free.TryTake(out var part)) part.Dispose();
    }
}
