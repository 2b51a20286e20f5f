using System.Globalization;
using System.Runtime.InteropServices;
using Pipeline.Inference.Onnx.Schema;

namespace Pipeline.Inference.Onnx;

/// <summary>
/// The ONNX external-data file of one graph: initializers' bytes are streamed into it as they are
/// made, and the graph keeps only (location, offset, length). Needed past protobuf's 2 GB message
/// limit, and it also means the weights are never held in memory twice (once as arrays, once in
/// the serialized model).
/// </summary>
internal sealed class OnnxExternalData : IDisposable
{
    // ONNX Runtime memory-maps an external tensor when its offset is a multiple of the allocation
    // granularity (the page size on Linux, 64 KiB on Windows); aligning to 64 KiB suits both.
    private const long Alignment = 64 * 1024;

    private readonly FileStream _file;

    /// <param name="path">Where the data is written now (may be a temporary name).</param>
    /// <param name="location">The file name the graph records; it must be beside the .onnx when loaded.</param>
    public OnnxExternalData(string path, string location)
    {
        _file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Location = location;
    }

    public string Location { get; }

    /// <summary>Appends <paramref name="data"/> and points <paramref name="tensor"/> at it.</summary>
    public void Store(TensorProto tensor, ReadOnlySpan<float> data)
    {
        long offset = (_file.Position + Alignment - 1) / Alignment * Alignment;
        if (offset > _file.Position) _file.Write(new byte[offset - _file.Position]);
        // In chunks: a tensor over 2 GB (a large vocabulary's embedding) is too long for one byte span.
        const int Chunk = 1 << 24;
        for (int start = 0; start < data.Length; start += Chunk)
            _file.Write(MemoryMarshal.AsBytes(data.Slice(start, Math.Min(Chunk, data.Length - start))));
        long length = (long)data.Length * sizeof(float);
        tensor.DataLocation = TensorProto.Types.DataLocation.External;
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = Location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
    }

    public void Dispose() => _file.Dispose();
}
