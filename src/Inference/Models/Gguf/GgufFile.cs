using System.IO.MemoryMappedFiles;
using System.Text;

namespace Pipeline.Inference.Models.Gguf;

/// <summary>
/// A GGUF file (v2 or v3, little-endian), memory-mapped read-only: its metadata, its tensor
/// table, and the tensors' bytes read in place without copying the file. The file stays mapped
/// until <see cref="Dispose"/>; spans and streams handed out are views of that mapping and must
/// not outlive it.
/// </summary>
/// <remarks>
/// Layout (ggml docs/gguf.md): magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata
/// count; the metadata key/value pairs; the tensor infos (name, uint32 n_dims, uint64 dims[n_dims],
/// uint32 ggml type, uint64 offset); padding to <c>general.alignment</c> (default 32); the data
/// section, where each tensor's offset is relative to the section's start. Everything read from
/// the file is bounds-checked, so a truncated or corrupt file gives <see cref="InvalidDataException"/>
/// naming the file and what was wrong.
/// </remarks>
internal sealed unsafe class GgufFile : IDisposable
{
    /// <summary>The alignment of the data section and of tensor offsets when the file names none.</summary>
    public const int DefaultAlignment = 32;

    private const uint Magic = 0x46554747; // "GGUF" read as a little-endian uint32
    private const int MaxDimensions = 4;   // GGML_MAX_DIMS
    private const int MaxArrayNesting = 8;

    private readonly MemoryMappedFile? _mapping;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    // Start of the mapped file; null for an empty file (nothing mapped) or after Dispose.
    private byte* _base;

    private GgufFile(string path, MemoryMappedFile mapping, MemoryMappedViewAccessor view, byte* basePointer, long length)
    {
        Path = path;
        _mapping = mapping;
        _view = view;
        _base = basePointer;
        FileLength = length;

        var reader = new Reader(path, basePointer, length);
        if (length < 4 || reader.UInt32() != Magic)
        {
            throw new InvalidDataException($"'{path}' is not a GGUF file (it does not start with the magic \"GGUF\").");
        }

        uint version = reader.UInt32();
        if (version is not (2 or 3))
        {
            string why = version == 1
                ? "version 1 (32-bit counts) is not supported; convert it with a current llama.cpp"
                : version > 0xFFFF ? "it looks big-endian, which is not supported" : $"version {version} is unknown";
            throw new InvalidDataException($"GGUF file '{path}': {why}.");
        }

        Version = (int)version;
        long tensorCount = reader.Count("tensor count", minimumBytesEach: 8 + 4 + 4 + 8);
        long metadataCount = reader.Count("metadata count", minimumBytesEach: 8 + 4);

        var metadata = new Dictionary<string, GgufValue>((int)metadataCount, StringComparer.Ordinal);
        for (long i = 0; i < metadataCount; i++)
        {
            string key = reader.String($"metadata key #{i}");
            var type = (GgufValueType)reader.UInt32();
            GgufValue value = reader.Value(key, type, nesting: 0);
            if (!metadata.TryAdd(key, value))
            {
                throw new InvalidDataException($"GGUF file '{path}': metadata key '{key}' appears twice.");
            }
        }

        Metadata = metadata;
        Alignment = metadata.TryGetValue("general.alignment", out var alignmentValue) ? ReadAlignment(alignmentValue) : DefaultAlignment;

        var tensors = new GgufTensorInfo[tensorCount];
        for (long i = 0; i < tensorCount; i++)
        {
            tensors[i] = reader.TensorInfo(i);
        }

        Tensors = tensors;
        DataOffset = AlignUp(reader.Position, Alignment);
        long dataLength = Math.Max(0, length - DataOffset);

        _tensorsByName = new Dictionary<string, GgufTensorInfo>(tensors.Length, StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            if (!_tensorsByName.TryAdd(tensor.Name, tensor))
            {
                throw new InvalidDataException($"GGUF file '{path}': tensor '{tensor.Name}' appears twice.");
            }

            if (tensor.Offset % Alignment != 0)
            {
                throw new InvalidDataException(
                    $"GGUF file '{path}': tensor '{tensor.Name}' has offset {tensor.Offset}, not a multiple of the alignment {Alignment}.");
            }

            if (tensor.IsKnownType && (tensor.Offset > dataLength || tensor.ByteCount > dataLength - tensor.Offset))
            {
                throw new InvalidDataException(
                    $"GGUF file '{path}' is truncated: tensor '{tensor.Name}' needs bytes {tensor.Offset}..{tensor.Offset + tensor.ByteCount} " +
                    $"of the data section, which holds {dataLength}.");
            }
        }
    }

    /// <summary>The file this was opened from.</summary>
    public string Path { get; }

    /// <summary>The format version, 2 or 3.</summary>
    public int Version { get; }

    public long FileLength { get; }

    /// <summary>Every metadata key/value pair, by key (ordinal).</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>The tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary><c>general.alignment</c>, or 32 when absent.</summary>
    public int Alignment { get; }

    /// <summary>Absolute file offset of the data section (tensor offsets count from here).</summary>
    public long DataOffset { get; }

    /// <summary><c>general.architecture</c> (e.g. "llama"), or null when absent.</summary>
    public string? Architecture => TryGetValue("general.architecture", out var v) ? v.AsString() : null;

    /// <summary>Maps <paramref name="path"/> and reads its header, metadata and tensor infos.</summary>
    public static GgufFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        long length = new FileInfo(path).Length; // throws FileNotFoundException naming the path
        if (length < 24)
        {
            throw new InvalidDataException($"'{path}' is not a GGUF file: it has {length} bytes, fewer than a GGUF header.");
        }

        var mapping = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            view = mapping.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            acquired = true;
            return new GgufFile(path, mapping, view, pointer + view.PointerOffset, length);
        }
        catch
        {
            if (acquired)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            view?.Dispose();
            mapping.Dispose();
            throw;
        }
    }

    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out GgufValue? value) =>
        Metadata.TryGetValue(key, out value);

    /// <summary>The value of <paramref name="key"/>; a missing key is an <see cref="InvalidDataException"/> naming it.</summary>
    public GgufValue GetValue(string key) =>
        Metadata.TryGetValue(key, out var value)
            ? value
            : throw new InvalidDataException($"GGUF file '{Path}' has no metadata key '{key}'.");

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    /// <summary>The tensor named <paramref name="name"/>; a missing one is an <see cref="InvalidDataException"/> naming it.</summary>
    public GgufTensorInfo GetTensor(string name) =>
        _tensorsByName.TryGetValue(name, out var tensor)
            ? tensor
            : throw new InvalidDataException($"GGUF file '{Path}' has no tensor '{name}'.");

    /// <summary>
    /// The tensor's raw bytes (in its ggml type's layout), a view of the mapping: no copy. For a
    /// tensor of 2 GiB or more use <see cref="GetTensorBytes(GgufTensorInfo, long, int)"/> in pieces
    /// or <see cref="OpenTensorStream"/>.
    /// </summary>
    public ReadOnlySpan<byte> GetTensorBytes(GgufTensorInfo tensor)
    {
        long count = CheckedByteCount(tensor);
        if (count > int.MaxValue)
        {
            throw new InvalidOperationException(
                $"Tensor '{tensor.Name}' has {count} bytes, more than one span can hold; read it in pieces or as a stream.");
        }

        return GetTensorBytes(tensor, 0, (int)count);
    }

    /// <summary>Bytes [<paramref name="start"/>, start + <paramref name="count"/>) of the tensor's data, in place.</summary>
    public ReadOnlySpan<byte> GetTensorBytes(GgufTensorInfo tensor, long start, int count)
    {
        long total = CheckedByteCount(tensor);
        if (start < 0 || count < 0 || start > total - count)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"Bytes {start}..{start + count} are outside tensor '{tensor.Name}' ({total} bytes).");
        }

        return new ReadOnlySpan<byte>(BasePointer + DataOffset + tensor.Offset + start, count);
    }

    /// <summary>A read-only stream over the tensor's bytes in the mapping (no copy; any size).</summary>
    public Stream OpenTensorStream(GgufTensorInfo tensor)
    {
        long count = CheckedByteCount(tensor);
        return new UnmanagedMemoryStream(BasePointer + DataOffset + tensor.Offset, count, count, FileAccess.Read);
    }

    public void Dispose()
    {
        if (_base == null)
        {
            return;
        }

        _base = null;
        _view!.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mapping!.Dispose();
    }

    private byte* BasePointer => _base != null ? _base : throw new ObjectDisposedException(nameof(GgufFile), $"GGUF file '{Path}' was closed.");

    private long CheckedByteCount(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!_tensorsByName.TryGetValue(tensor.Name, out var own) || !ReferenceEquals(own, tensor))
        {
            throw new ArgumentException($"Tensor '{tensor.Name}' is not one of '{Path}'s tensors.", nameof(tensor));
        }

        return tensor.IsKnownType
            ? tensor.ByteCount
            : throw new NotSupportedException($"Tensor '{tensor.Name}' in '{Path}' has ggml type id {tensor.TypeId}, which this reader does not know the size of.");
    }

    private int ReadAlignment(GgufValue value)
    {
        long alignment = value.AsInt64();
        return alignment > 0 && alignment <= 1 << 20 && (alignment & (alignment - 1)) == 0
            ? (int)alignment
            : throw new InvalidDataException($"GGUF file '{Path}': general.alignment {alignment} is not a power of two.");
    }

    private static long AlignUp(long offset, int alignment) => (offset + alignment - 1) / alignment * alignment;

    /// <summary>A bounds-checked little-endian cursor over the mapped header.</summary>
    private sealed class Reader(string path, byte* start, long length)
    {
        public long Position { get; private set; }

        public uint UInt32() => Read<uint>();

        public ulong UInt64() => Read<ulong>();

        /// <summary>A uint64 count, bounded by what the rest of the file could hold.</summary>
        public long Count(string what, int minimumBytesEach)
        {
            ulong count = UInt64();
            if (count > (ulong)((length - Position) / minimumBytesEach))
            {
                throw new InvalidDataException($"GGUF file '{path}' is truncated or corrupt: {what} {count} at byte {Position - 8} exceeds what the file can hold.");
            }

            return (long)count;
        }

        public string String(string what)
        {
            ulong byteCount = UInt64();
            if (byteCount > (ulong)(length - Position) || byteCount > int.MaxValue)
            {
                throw new InvalidDataException($"GGUF file '{path}' is truncated or corrupt: {what} claims {byteCount} bytes at byte {Position - 8}, past the end of the file.");
            }

            var text = Encoding.UTF8.GetString(start + Position, (int)byteCount);
            Position += (long)byteCount;
            return text;
        }

        public GgufValue Value(string key, GgufValueType type, int nesting) => type switch
        {
            GgufValueType.UInt8 => new GgufValue(key, type, Read<byte>()),
            GgufValueType.Int8 => new GgufValue(key, type, Read<sbyte>()),
            GgufValueType.UInt16 => new GgufValue(key, type, Read<ushort>()),
            GgufValueType.Int16 => new GgufValue(key, type, Read<short>()),
            GgufValueType.UInt32 => new GgufValue(key, type, Read<uint>()),
            GgufValueType.Int32 => new GgufValue(key, type, Read<int>()),
            GgufValueType.Float32 => new GgufValue(key, type, Read<float>()),
            GgufValueType.Bool => new GgufValue(key, type, Bool(key)),
            GgufValueType.String => new GgufValue(key, type, String($"metadata '{key}'")),
            GgufValueType.UInt64 => new GgufValue(key, type, Read<ulong>()),
            GgufValueType.Int64 => new GgufValue(key, type, Read<long>()),
            GgufValueType.Float64 => new GgufValue(key, type, Read<double>()),
            GgufValueType.Array => Array(key, nesting),
            _ => throw new InvalidDataException($"GGUF file '{path}': metadata '{key}' has unknown value type {(uint)type} at byte {Position - 4}."),
        };

        public GgufTensorInfo TensorInfo(long index)
        {
            string name = String($"tensor #{index}'s name");
            uint dimensionCount = UInt32();
            if (dimensionCount is 0 or > MaxDimensions)
            {
                throw new InvalidDataException($"GGUF file '{path}': tensor '{name}' has {dimensionCount} dimensions (1 to {MaxDimensions} allowed).");
            }

            var dimensions = new long[dimensionCount];
            long elements = 1;
            for (int d = 0; d < dimensions.Length; d++)
            {
                ulong extent = UInt64();
                if (extent > long.MaxValue || (extent != 0 && elements > long.MaxValue / (long)extent))
                {
                    throw new InvalidDataException($"GGUF file '{path}': tensor '{name}' has an impossible extent {extent} in dimension {d}.");
                }

                dimensions[d] = (long)extent;
                elements *= (long)extent;
            }

            uint typeId = UInt32();
            ulong offset = UInt64();
            if (offset > (ulong)length)
            {
                throw new InvalidDataException($"GGUF file '{path}': tensor '{name}' has offset {offset}, past the end of the file.");
            }

            long byteCount = -1;
            if (GgmlTypeSizes.TryGet(typeId, out int blockElements, out int blockBytes))
            {
                if (dimensions[0] % blockElements != 0)
                {
                    throw new InvalidDataException(
                        $"GGUF file '{path}': tensor '{name}' of type {(GgmlType)typeId} has rows of {dimensions[0]} elements, not a multiple of its block of {blockElements}.");
                }

                byteCount = elements / blockElements * blockBytes;
            }

            return new GgufTensorInfo
            {
                Name = name,
                Dimensions = dimensions,
                TypeId = typeId,
                Offset = (long)offset,
                ElementCount = elements,
                ByteCount = byteCount,
            };
        }

        private GgufValue Array(string key, int nesting)
        {
            if (nesting >= MaxArrayNesting)
            {
                throw new InvalidDataException($"GGUF file '{path}': metadata '{key}' nests arrays deeper than {MaxArrayNesting}.");
            }

            var elementType = (GgufValueType)UInt32();
            int elementBytes = elementType switch
            {
                GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
                GgufValueType.UInt16 or GgufValueType.Int16 => 2,
                GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
                GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
                GgufValueType.Array => 12,
                _ => throw new InvalidDataException($"GGUF file '{path}': metadata '{key}' is an array of unknown type {(uint)elementType}."),
            };
            long count = Count($"metadata '{key}' array length", elementBytes);
            if (count > System.Array.MaxLength)
            {
                throw new InvalidDataException($"GGUF file '{path}': metadata '{key}' has {count} elements, too many for one array.");
            }

            int n = (int)count;
            object values = elementType switch
            {
                GgufValueType.UInt8 => Block<byte>(n),
                GgufValueType.Int8 => Block<sbyte>(n),
                GgufValueType.UInt16 => Block<ushort>(n),
                GgufValueType.Int16 => Block<short>(n),
                GgufValueType.UInt32 => Block<uint>(n),
                GgufValueType.Int32 => Block<int>(n),
                GgufValueType.Float32 => Block<float>(n),
                GgufValueType.UInt64 => Block<ulong>(n),
                GgufValueType.Int64 => Block<long>(n),
                GgufValueType.Float64 => Block<double>(n),
                GgufValueType.Bool => Bools(key, n),
                GgufValueType.String => Strings(key, n),
                _ => Arrays(key, n, nesting),
            };
            return new GgufValue(key, GgufValueType.Array, values, elementType);
        }

        private T[] Block<T>(int n)
            where T : unmanaged
        {
            var values = new T[n];
            long bytes = (long)n * sizeof(T);
            Need(bytes);
            new ReadOnlySpan<T>(start + Position, n).CopyTo(values); // the mapping may be unaligned for T; span copy handles it
            Position += bytes;
            return values;
        }

        private bool[] Bools(string key, int n)
        {
            var values = new bool[n];
            for (int i = 0; i < n; i++)
            {
                values[i] = Bool(key);
            }

            return values;
        }

        private string[] Strings(string key, int n)
        {
            var values = new string[n];
            for (int i = 0; i < n; i++)
            {
                values[i] = String($"metadata '{key}' element {i}");
            }

            return values;
        }

        private GgufValue[] Arrays(string key, int n, int nesting)
        {
            var values = new GgufValue[n];
            for (int i = 0; i < n; i++)
            {
                values[i] = Array(key, nesting + 1);
            }

            return values;
        }

        private bool Bool(string key)
        {
            byte b = Read<byte>();
            return b switch
            {
                0 => false,
                1 => true,
                _ => throw new InvalidDataException($"GGUF file '{path}': metadata '{key}' holds bool byte {b}, neither 0 nor 1."),
            };
        }

        private T Read<T>()
            where T : unmanaged
        {
            Need(sizeof(T));
            T value = System.Runtime.CompilerServices.Unsafe.ReadUnaligned<T>(start + Position);
            Position += sizeof(T);
            return value;
        }

        private void Need(long bytes)
        {
            if (bytes > length - Position)
            {
                throw new InvalidDataException($"GGUF file '{path}' is truncated: {bytes} more bytes needed at byte {Position} of {length}.");
            }
        }
    }
}
