using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Pipeline.Inference.Models.HuggingFace;

/// <summary>One tensor's entry in a safetensors header: element type, shape, byte range in the data section.</summary>
internal sealed record SafetensorsTensor(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A safetensors file (8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and data_offsets, then the data). Tensors are read on demand with positioned
/// reads and widened to float32 chunk by chunk: only the requested tensor ever sits in memory,
/// and the file's bytes stay in the page cache, which is not this process's resident memory.
/// </summary>
internal sealed class SafetensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L << 20;
    private const int ChunkBytes = 8 << 20;

    private readonly SafeFileHandle _handle;
    private readonly long _dataStart;

    private SafetensorsFile(string path, SafeFileHandle handle, long dataStart, IReadOnlyDictionary<string, SafetensorsTensor> tensors, byte[] header)
    {
        Path = path;
        _handle = handle;
        _dataStart = dataStart;
        Tensors = tensors;
        HeaderBytes = header;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsTensor> Tensors { get; }

    /// <summary>The raw JSON header (hashed into cache keys: it changes whenever a tensor's layout does).</summary>
    public byte[] HeaderBytes { get; }

    public static SafetensorsFile Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            long length = RandomAccess.GetLength(handle);
            Span<byte> prefix = stackalloc byte[8];
            if (length < 8 || RandomAccess.Read(handle, prefix, 0) != 8)
                throw new InvalidDataException($"{path}: too short for a safetensors header");
            long headerLength = BinaryPrimitives.ReadInt64LittleEndian(prefix);
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > length)
                throw new InvalidDataException($"{path}: safetensors header length {headerLength} does not fit the file ({length} bytes)");
            var header = new byte[headerLength];
            if (RandomAccess.Read(handle, header, 8) != header.Length)
                throw new InvalidDataException($"{path}: truncated safetensors header");
            long dataStart = 8 + headerLength;
            var tensors = ParseHeader(path, header, length - dataStart);
            return new SafetensorsFile(path, handle, dataStart, tensors, header);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static Dictionary<string, SafetensorsTensor> ParseHeader(string path, byte[] header, long dataLength)
    {
        var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(header);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: the safetensors header is not a JSON object");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__") continue;
                var e = entry.Value;
                if (e.ValueKind != JsonValueKind.Object
                    || !e.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
                    || !e.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
                    || !e.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
                    throw new InvalidDataException($"{path}: tensor '{entry.Name}' lacks dtype, shape or data_offsets");
                var dims = shape.EnumerateArray().Select(d => d.GetInt64()).ToArray();
                long begin = offsets[0].GetInt64(), end = offsets[1].GetInt64();
                var tensor = new SafetensorsTensor(entry.Name, dtype.GetString()!, dims, begin, end);
                if (begin < 0 || end < begin || end > dataLength)
                    throw new InvalidDataException($"{path}: tensor '{entry.Name}' data_offsets [{begin}, {end}] fall outside the {dataLength} data bytes");
                if (dims.Any(d => d < 0))
                    throw new InvalidDataException($"{path}: tensor '{entry.Name}' has a negative dimension");
                if (ElementBytes(tensor.DType) is int size && tensor.ElementCount * size != end - begin)
                    throw new InvalidDataException($"{path}: tensor '{entry.Name}' ({tensor.DType} [{string.Join(", ", dims)}]) has {end - begin} bytes, expected {tensor.ElementCount * size}");
                tensors[entry.Name] = tensor;
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: malformed safetensors header: {e.Message}", e);
        }
        return tensors;
    }

    /// <summary>Bytes per element of the dtypes this reader widens to float32, or null.</summary>
    public static int? ElementBytes(string dtype) => dtype switch
    {
        "F32" => 4,
        "F16" or "BF16" => 2,
        _ => null,
    };

    /// <summary>Reads tensor <paramref name="name"/> as float32 (F16 and BF16 widened exactly).</summary>
    public float[] ReadFloat32(string name)
    {
        if (!Tensors.TryGetValue(name, out var t))
            throw new InvalidDataException($"{Path}: no tensor '{name}'");
        if (ElementBytes(t.DType) is not int size)
            throw new InvalidDataException($"{Path}: tensor '{name}' has dtype {t.DType}; only F32, F16 and BF16 are supported");
        var result = new float[t.ElementCount];
        long position = _dataStart + t.Begin;
        if (size == 4)
        {
            const int ChunkFloats = ChunkBytes / 4;
            for (long i = 0; i < result.LongLength; i += ChunkFloats)
            {
                var span = result.AsSpan().Slice((int)i, (int)Math.Min(ChunkFloats, result.LongLength - i));
                ReadExactly(MemoryMarshal.AsBytes(span), position + i * 4, name);
            }
            return result;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            const int ChunkHalves = ChunkBytes / 2;
            for (long i = 0; i < result.LongLength; i += ChunkHalves)
            {
                int count = (int)Math.Min(ChunkHalves, result.LongLength - i);
                var bytes = buffer.AsSpan(0, count * 2);
                ReadExactly(bytes, position + i * 2, name);
                var halves = MemoryMarshal.Cast<byte, ushort>(bytes);
                var target = result.AsSpan((int)i, count);
                if (t.DType == "BF16")
                    for (int j = 0; j < count; j++) target[j] = BitConverter.Int32BitsToSingle(halves[j] << 16);
                else
                    for (int j = 0; j < count; j++) target[j] = (float)BitConverter.UInt16BitsToHalf(halves[j]);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return result;
    }

    private void ReadExactly(Span<byte> target, long offset, string name)
    {
        while (target.Length > 0)
        {
            int read = RandomAccess.Read(_handle, target, offset);
            if (read <= 0) throw new InvalidDataException($"{Path}: tensor '{name}' is truncated");
            target = target[read..];
            offset += read;
        }
    }

    public void Dispose() => _handle.Dispose();
}
