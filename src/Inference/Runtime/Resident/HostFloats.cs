using System.Buffers;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// Floats in host memory the device copies into (pinned on CUDA), seen as <see cref="Memory{T}"/>, so
/// a part's logits reach the sampler where the download put them. The memory belongs to its
/// <see cref="ResidentPart"/> and is freed only with the part, when the model's shelf goes.
/// </summary>
internal sealed unsafe class HostFloats(nint pointer, int length) : MemoryManager<float>
{
    public override Span<float> GetSpan() => new((void*)pointer, length);

    public override MemoryHandle Pin(int elementIndex = 0) => new((float*)pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
