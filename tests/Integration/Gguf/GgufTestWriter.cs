using System.Text;

namespace Pipeline.Integration.Gguf;

/// <summary>
/// Writes small GGUF files for tests: metadata of any CLR value (byte, sbyte, ushort, short, uint,
/// int, float, bool, string, ulong, long, double, and arrays of them, arrays of arrays as object[])
/// and tensors given as raw bytes with a ggml type id, laid out as ggml docs/gguf.md says.
/// </summary>
internal sealed class GgufTestWriter
{
    private readonly List<(string Key, object Value)> _metadata = [];
    private readonly List<(string Name, long[] Dimensions, uint TypeId, byte[] Data)> _tensors = [];

    public uint Version { get; init; } = 3;

    /// <summary>Data alignment; a value other than 32 is also written as general.alignment.</summary>
    public int Alignment { get; init; } = 32;

    public GgufTestWriter Add(string key, object value)
    {
        _metadata.Add((key, value));
        return this;
    }

    public GgufTestWriter AddTensor(string name, long[] dimensions, uint typeId, byte[] data)
    {
        _tensors.Add((name, dimensions, typeId, data));
        return this;
    }

    public void Write(string path)
    {
        using var stream = File.Create(path);
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        var metadata = Alignment == 32 ? _metadata : [.. _metadata, ("general.alignment", (object)(uint)Alignment)];
        w.Write("GGUF"u8);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            WriteString(w, key);
            w.Write(TypeOf(value));
            WriteValue(w, value);
        }

        long offset = 0;
        var offsets = new List<long>();
        foreach (var (name, dimensions, typeId, data) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)dimensions.Length);
            foreach (long d in dimensions)
            {
                w.Write((ulong)d);
            }

            w.Write(typeId);
            w.Write((ulong)offset);
            offsets.Add(offset);
            offset = AlignUp(offset + data.Length);
        }

        Pad(w);
        long dataStart = stream.Position;
        for (int i = 0; i < _tensors.Count; i++)
        {
            stream.Position = dataStart + offsets[i];
            w.Write(_tensors[i].Data);
        }
    }

    private long AlignUp(long at) => (at + Alignment - 1) / Alignment * Alignment;

    private void Pad(BinaryWriter w)
    {
        while (w.BaseStream.Position % Alignment != 0)
        {
            w.Write((byte)0);
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static uint TypeOf(object value) => value switch
    {
        byte => 0, sbyte => 1, ushort => 2, short => 3, uint => 4, int => 5, float => 6, bool => 7, string => 8,
        Array => 9, ulong => 10, long => 11, double => 12,
        _ => throw new ArgumentException($"no GGUF type for {value.GetType()}", nameof(value)),
    };

    private static void WriteValue(BinaryWriter w, object value)
    {
        switch (value)
        {
            case byte v: w.Write(v); break;
            case sbyte v: w.Write(v); break;
            case ushort v: w.Write(v); break;
            case short v: w.Write(v); break;
            case uint v: w.Write(v); break;
            case int v: w.Write(v); break;
            case float v: w.Write(v); break;
            case bool v: w.Write(v); break;
            case string v: WriteString(w, v); break;
            case ulong v: w.Write(v); break;
            case long v: w.Write(v); break;
            case double v: w.Write(v); break;
            case Array array:
                object[] items = [.. array.Cast<object>()];
                w.Write(items.Length == 0 ? 4u : TypeOf(items[0]));
                w.Write((ulong)items.Length);
                foreach (object item in items)
                {
                    WriteValue(w, item);
                }

                break;
            default:
                throw new ArgumentException($"no GGUF type for {value.GetType()}", nameof(value));
        }
    }
}
