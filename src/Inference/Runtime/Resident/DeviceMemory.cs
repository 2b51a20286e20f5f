using Microsoft.ML.OnnxRuntime;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// The memory a resident KV pool lives in, and the few copies the pool needs: zero a range, upload
/// a sequence's past once, append a step's new positions in place, and bring those positions back
/// for the host copy. On CUDA it is the GPU's memory (<see cref="CudaMemory"/>); on the CPU, native
/// host memory (<see cref="HostMemory"/>), so that the same pool and bindings run, and are tested,
/// where there is no GPU.
/// </summary>
/// <remarks>
/// Pointers are raw: an <see cref="OrtValue"/> made over them does not own them, and the pool frees
/// what it allocated when it is disposed. Copies in 2D are CUDA's cudaMemcpy2D: <c>height</c> rows of
/// <c>widthBytes</c> bytes, each row <c>pitch</c> bytes after the previous one.
/// </remarks>
internal abstract unsafe class DeviceMemory : IDisposable
{
    /// <summary>Where ONNX Runtime is told the pool's tensors lie.</summary>
    public abstract OrtMemoryInfo Info { get; }

    /// <summary>"CUDA" or "host": what the memory is, for reports.</summary>
    public abstract string Name { get; }

    /// <summary><paramref name="bytes"/> of zeroed memory.</summary>
    public abstract nint Allocate(long bytes);

    public abstract void Free(nint pointer);

    public abstract void Zero(nint destination, long bytes);

    /// <summary>Zeroes <paramref name="height"/> rows of <paramref name="widthBytes"/>, each <paramref name="pitch"/> bytes after the previous (one call where a loop of <see cref="Zero"/> would make many).</summary>
    public abstract void Zero2D(nint destination, long pitch, long widthBytes, long height);

    /// <summary>
    /// Host memory the device copies to and from directly: pinned (page-locked) on CUDA, so a copy
    /// runs at the bus's speed instead of through a driver's bounce buffer. Freed by <see cref="FreeHost"/>.
    /// </summary>
    public abstract nint AllocateHost(long bytes);

    public abstract void FreeHost(nint pointer);

    /// <summary>
    /// Host to memory, a box of <paramref name="depth"/> slices × <paramref name="height"/> rows ×
    /// <paramref name="widthBytes"/> (as <see cref="Copy3D"/>), finished with its source when it returns.
    /// </summary>
    public abstract void Upload3D(nint destination, long destinationPitch, long destinationSlicePitch,
        void* source, long sourcePitch, long sourceSlicePitch, long widthBytes, long height, long depth);

    /// <summary>Host to memory; on CUDA the copy may still be landing when it returns (pageable source): <see cref="Synchronize"/> before a call reads it.</summary>
    public abstract void Upload2D(nint destination, long destinationPitch, void* source, long sourcePitch, long widthBytes, long height);

    /// <summary>Host to memory, contiguous (as <see cref="Upload2D"/>).</summary>
    public void Upload(nint destination, void* source, long bytes) => Upload2D(destination, bytes, source, bytes, bytes, 1);

    /// <summary>
    /// Within the memory, a box of <paramref name="depth"/> slices × <paramref name="height"/> rows ×
    /// <paramref name="widthBytes"/>; each side has its own row pitch and slice pitch (a whole number
    /// of rows). One call for what would otherwise be one 2D copy per slice; may still be running
    /// when it returns, until <see cref="Synchronize"/>.
    /// </summary>
    public abstract void Copy3D(nint destination, long destinationPitch, long destinationSlicePitch,
        nint source, long sourcePitch, long sourceSlicePitch, long widthBytes, long height, long depth);

    /// <summary>Memory to host, finished when it returns (after every copy queued before it).</summary>
    public abstract void Download(void* destination, nint source, long bytes);

    /// <summary>Waits until every copy queued so far is done.</summary>
    public abstract void Synchronize();

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    /// <summary>Lets go of what the memory itself holds (not the pools' allocations: their owners free them).</summary>
    protected virtual void Release() { }
}
