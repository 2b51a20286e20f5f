namespace Pipeline.Inference.Models.Gguf;

/// <summary>
/// One tensor's entry in a GGUF file. <see cref="Dimensions"/> are in ggml order: the first is the
/// fastest-varying (a row's length), so a [rows, cols] PyTorch matrix is stored as {cols, rows}.
/// </summary>
internal sealed record GgufTensorInfo
{
    public required string Name { get; init; }

    /// <summary>Extents in ggml order (ne[0] first, the contiguous one).</summary>
    public required IReadOnlyList<long> Dimensions { get; init; }

    /// <summary>The ggml type id as stored; cast to <see cref="GgmlType"/> for the known ones.</summary>
    public required uint TypeId { get; init; }

    /// <summary>Byte offset of the tensor's data from the start of the data section.</summary>
    public required long Offset { get; init; }

    /// <summary>Product of the dimensions.</summary>
    public required long ElementCount { get; init; }

    /// <summary>Bytes the data occupies, or -1 when <see cref="TypeId"/> is a type this reader does not know.</summary>
    public required long ByteCount { get; init; }

    public GgmlType Type => (GgmlType)TypeId;

    /// <summary>Whether <see cref="ByteCount"/> is known (the type id is one of <see cref="GgmlType"/>).</summary>
    public bool IsKnownType => ByteCount >= 0;
}
