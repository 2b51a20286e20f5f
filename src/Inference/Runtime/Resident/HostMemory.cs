using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// <see cref="DeviceMemory"/> in native host memory: the resident pool on the CPU. It exists so the
/// pool, its slots and its bindings run, and are tested bit for bit against the staged path, on
/// machines without a GPU (CI); on the CPU the staged path needs no copying of the past either.
/// </summary>
internal sealed unsafe class HostMemory : DeviceMemory
{
    public override OrtMemoryInfo Info => OrtMemoryInfo.DefaultInstance;

    public override string Name => "host";

    // 64-byte alignment: what ONNX Runtime's CPU allocator gives its own tensors.
    public override nint Allocate(long bytes)
    {
        var pointer = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        NativeMemory.Clear(pointer, (nuint)bytes);
        return (nint)pointer;
    }

    public override void Free(nint pointer) => NativeMemory.AlignedFree((void*)pointer);

    public override void Zero(nint destination, long bytes) => NativeMemory.Clear((void*)destination, (nuint)bytes);

    public override void Zero2D(nint destination, long pitch, long widthBytes, long height)
    {
        for (long row = 0; row < height; row++) NativeMemory.Clear((byte*)destination + row * pitch, (nuint)widthBytes);
    }

    public override nint AllocateHost(long bytes) => Allocate(bytes);

    public override void FreeHost(nint pointer) => Free(pointer);

    public override void Upload3D(nint destination, long destinationPitch, long destinationSlicePitch,
        void* source, long sourcePitch, long sourceSlicePitch, long widthBytes, long height, long depth) =>
        Copy3D(destination, destinationPitch, destinationSlicePitch, (nint)source, sourcePitch, sourceSlicePitch, widthBytes, height, depth);

    public override void Upload2D(nint destination, long destinationPitch, void* source, long sourcePitch, long widthBytes, long height) =>
        Copy2D(destination, destinationPitch, (nint)source, sourcePitch, widthBytes, height);

    private static void Copy2D(nint destination, long destinationPitch, nint source, long sourcePitch, long widthBytes, long height)
    {
        for (long row = 0; row < height; row++)
            Buffer.MemoryCopy((byte*)source + row * sourcePitch, (byte*)destination + row * destinationPitch, widthBytes, widthBytes);
    }

    public override void Copy3D(nint destination, long destinationPitch, long destinationSlicePitch,
        nint source, long sourcePitch, long sourceSlicePitch, long widthBytes, long height, long depth)
    {
        for (long slice = 0; slice < depth; slice++)
            Copy2D(destination + (nint)(slice * destinationSlicePitch), destinationPitch, source + (nint)(slice * sourceSlicePitch), sourcePitch, widthBytes, height);
    }

    public override void Download(void* destination, nint source, long bytes) =>
        Buffer.MemoryCopy((void*)source, destination, bytes, bytes);

    public override void Synchronize() { }
}
