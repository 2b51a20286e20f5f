using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// <see cref="DeviceMemory"/> on the GPU, through the CUDA runtime library that ONNX Runtime's CUDA
/// provider loads itself (libcudart.so.13), so the pool shares the provider's device and context.
/// Functions are looked up once per instance; nothing here is static.
/// </summary>
/// <remarks>
/// Appends (<see cref="Copy3D"/>) go on CUDA's legacy default stream, asynchronously; ONNX Runtime
/// runs its kernels on its own non-blocking streams and has finished a call when Run returns, and the
/// pool calls <see cref="Synchronize"/> before the next call reads what was appended. That waits for
/// the legacy stream alone (cudaStreamSynchronize), not the device: a device-wide wait also waited
/// for the prefill actor's call running beside it on the GPU (the decode call took 26 ms at 64
/// concurrent on an H200, against ~7 ms of graph replay).
/// </remarks>
internal sealed unsafe class CudaMemory : DeviceMemory
{
    private const int HostToDevice = 1, DeviceToHost = 2, DeviceToDevice = 3;

    private readonly nint _library;
    private readonly delegate* unmanaged<nint*, nuint, int> _malloc;
    private readonly delegate* unmanaged<nint, int> _free;
    private readonly delegate* unmanaged<nint, int, nuint, int> _memset;
    private readonly delegate* unmanaged<nint, nuint, nint, nuint, nuint, nuint, int, int> _memcpy2D;
    private readonly delegate* unmanaged<nint, nint, nuint, int, int> _memcpy;
    private readonly delegate* unmanaged<Memcpy3DParameters*, nint, int> _memcpy3DAsync;
    private readonly delegate* unmanaged<Memcpy3DParameters*, int> _memcpy3D;
    private readonly delegate* unmanaged<nint, nuint, int, nuint, nuint, int> _memset2D;
    private readonly delegate* unmanaged<nint*, nuint, int> _mallocHost;
    private readonly delegate* unmanaged<nint, int> _freeHost;
    private readonly delegate* unmanaged<nint, int> _streamSynchronize;
    private readonly delegate* unmanaged<int, nint> _errorString;
    private readonly delegate* unmanaged<int, int> _setDevice;
    private readonly int _device;
    private bool _disposed;

    private CudaMemory(nint library, int device)
    {
        _library = library;
        _device = device;
        _malloc = (delegate* unmanaged<nint*, nuint, int>)Export("cudaMalloc");
        _free = (delegate* unmanaged<nint, int>)Export("cudaFree");
        _memset = (delegate* unmanaged<nint, int, nuint, int>)Export("cudaMemset");
        _memcpy2D = (delegate* unmanaged<nint, nuint, nint, nuint, nuint, nuint, int, int>)Export("cudaMemcpy2D");
        _memcpy = (delegate* unmanaged<nint, nint, nuint, int, int>)Export("cudaMemcpy");
        _memcpy3DAsync = (delegate* unmanaged<Memcpy3DParameters*, nint, int>)Export("cudaMemcpy3DAsync");
        _memcpy3D = (delegate* unmanaged<Memcpy3DParameters*, int>)Export("cudaMemcpy3D");
        _memset2D = (delegate* unmanaged<nint, nuint, int, nuint, nuint, int>)Export("cudaMemset2D");
        _mallocHost = (delegate* unmanaged<nint*, nuint, int>)Export("cudaMallocHost");
        _freeHost = (delegate* unmanaged<nint, int>)Export("cudaFreeHost");
        _streamSynchronize = (delegate* unmanaged<nint, int>)Export("cudaStreamSynchronize");
        _errorString = (delegate* unmanaged<int, nint>)Export("cudaGetErrorString");
        _setDevice = (delegate* unmanaged<int, int>)Export("cudaSetDevice");
        Info = new OrtMemoryInfo("Cuda", OrtAllocatorType.DeviceAllocator, device, OrtMemType.Default);
    }

    /// <summary>The CUDA runtime of device <paramref name="device"/>, or null with the reason when it cannot be loaded.</summary>
    public static CudaMemory? TryCreate(int device, out string? reason)
    {
        foreach (var name in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so" })
        {
            if (!NativeLibrary.TryLoad(name, out var library)) continue;
            try
            {
                reason = null;
                return new CudaMemory(library, device);
            }
            catch (EntryPointNotFoundException e)
            {
                NativeLibrary.Free(library);
                reason = $"{name}: {e.Message}";
                return null;
            }
        }
        reason = "the CUDA runtime library (libcudart.so.13) could not be loaded";
        return null;
    }

    public override OrtMemoryInfo Info { get; }

    public override string Name => "CUDA";

    private nint Export(string name) => NativeLibrary.GetExport(_library, name);

    // Every call first makes the device current on the calling thread (actors run on pool threads).
    private void Check(int status, string what)
    {
        if (status != 0)
            throw new InvalidOperationException($"CUDA {what} failed: {Marshal.PtrToStringAnsi(_errorString(status))} ({status})");
    }

    private void OnDevice() => Check(_setDevice(_device), "cudaSetDevice");

    public override nint Allocate(long bytes)
    {
        OnDevice();
        nint pointer;
        Check(_malloc(&pointer, (nuint)Math.Max(bytes, 1)), $"cudaMalloc of {bytes} bytes");
        Check(_memset(pointer, 0, (nuint)bytes), "cudaMemset");
        return pointer;
    }

    public override void Free(nint pointer)
    {
        if (_disposed) return;
        OnDevice();
        Check(_free(pointer), "cudaFree");
    }

    public override void Zero(nint destination, long bytes)
    {
        OnDevice();
        Check(_memset(destination, 0, (nuint)bytes), "cudaMemset");
    }

    public override void Zero2D(nint destination, long pitch, long widthBytes, long height)
    {
        OnDevice();
        Check(_memset2D(destination, (nuint)pitch, 0, (nuint)widthBytes, (nuint)height), "cudaMemset2D");
    }

    public override nint AllocateHost(long bytes)
    {
        OnDevice();
        nint pointer;
        Check(_mallocHost(&pointer, (nuint)Math.Max(bytes, 1)), $"cudaMallocHost of {bytes} bytes");
        return pointer;
    }

    public override void FreeHost(nint pointer)
    {
        if (_disposed) return;
        OnDevice();
        Check(_freeHost(pointer), "cudaFreeHost");
    }

    public override void Upload3D(nint destination, long destinationPitch, long destinationSlicePitch,
        void* source, long sourcePitch, long sourceSlicePitch, long widthBytes, long height, long depth)
    {
        var parameters = Box(destination, destinationPitch, destinationSlicePitch, (nint)source, sourcePitch, sourceSlicePitch, widthBytes, height, depth, HostToDevice);
        OnDevice();
        // The synchronous copy: the caller refills its source for the next sequence at once.
        Check(_memcpy3D(&parameters), "cudaMemcpy3D to the device");
    }

    private static Memcpy3DParameters Box(nint destination, long destinationPitch, long destinationSlicePitch,
        nint source, long sourcePitch, long sourceSlicePitch, long widthBytes, long height, long depth, int kind)
    {
        if (destinationSlicePitch % destinationPitch != 0 || sourceSlicePitch % sourcePitch != 0)
            throw new ArgumentException("a slice pitch must be a whole number of rows");
        // Linear memory: positions zero (the pointers carry the offsets), widths and x in bytes, and
        // a slice pitch of pitch × ysize.
        return new Memcpy3DParameters
        {
            SourcePointer = new PitchedPointer(source, sourcePitch, sourcePitch, sourceSlicePitch / sourcePitch),
            DestinationPointer = new PitchedPointer(destination, destinationPitch, destinationPitch, destinationSlicePitch / destinationPitch),
            Width = (nuint)widthBytes,
            Height = (nuint)height,
            Depth = (nuint)depth,
            Kind = kind,
        };
    }

    public override void Upload2D(nint destination, long destinationPitch, void* source, long sourcePitch, long widthBytes, long height)
    {
        OnDevice();
        Check(_memcpy2D(destination, (nuint)destinationPitch, (nint)source, (nuint)sourcePitch, (nuint)widthBytes, (nuint)height, HostToDevice), "cudaMemcpy2D to the device");
    }

    public override void Copy3D(nint destination, long destinationPitch, long destinationSlicePitch,
        nint source, long sourcePitch, long sourceSlicePitch, long widthBytes, long height, long depth)
    {
        var parameters = Box(destination, destinationPitch, destinationSlicePitch, source, sourcePitch, sourceSlicePitch, widthBytes, height, depth, DeviceToDevice);
        OnDevice();
        Check(_memcpy3DAsync(&parameters, 0), "cudaMemcpy3DAsync on the device");
    }

    public override void Download(void* destination, nint source, long bytes)
    {
        OnDevice();
        Check(_memcpy((nint)destination, source, (nuint)bytes, DeviceToHost), "cudaMemcpy to the host");
    }

    public override void Synchronize()
    {
        OnDevice();
        // Stream 0: the legacy default stream, where every upload, zeroing and append of the pool goes.
        Check(_streamSynchronize(0), "cudaStreamSynchronize");
    }

    protected override void Release()
    {
        if (_disposed) return;
        _disposed = true;
        Info.Dispose();
        // The library stays loaded: ONNX Runtime's CUDA provider holds it too.
    }
}

/// <summary>cudaPitchedPtr: a pointer with its row pitch and logical width (bytes) and height (rows).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly struct PitchedPointer(nint pointer, long pitch, long widthBytes, long height)
{
    public readonly nint Pointer = pointer;
    public readonly nuint Pitch = (nuint)pitch;
    public readonly nuint Width = (nuint)widthBytes;
    public readonly nuint Height = (nuint)height;
}

/// <summary>cudaMemcpy3DParms (driver_types.h), field for field; arrays and positions stay zero here.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Memcpy3DParameters
{
    public nint SourceArray;
    public nuint SourceX, SourceY, SourceZ;
    public PitchedPointer SourcePointer;
    public nint DestinationArray;
    public nuint DestinationX, DestinationY, DestinationZ;
    public PitchedPointer DestinationPointer;
    public nuint Width, Height, Depth;
    public int Kind;
}
