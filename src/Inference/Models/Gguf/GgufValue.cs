using System.Globalization;

namespace Pipeline.Inference.Models.Gguf;

/// <summary>
/// One GGUF metadata value, immutable. Scalars are held as their CLR type (byte, sbyte, ushort,
/// short, uint, int, float, bool, string, ulong, long, double); an array holds a CLR array of its
/// element type (<c>string[]</c>, <c>int[]</c>, <c>float[]</c>..., or <c>GgufValue[]</c> for
/// arrays of arrays), with <see cref="ElementType"/> naming the GGUF element type.
/// </summary>
internal sealed class GgufValue
{
    internal GgufValue(string key, GgufValueType type, object value, GgufValueType? elementType = null)
    {
        Key = key;
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    /// <summary>The metadata key this value was read under (named in errors).</summary>
    public string Key { get; }

    public GgufValueType Type { get; }

    /// <summary>For <see cref="GgufValueType.Array"/>, the type of its elements; otherwise null.</summary>
    public GgufValueType? ElementType { get; }

    /// <summary>The value as read: a boxed scalar, a string, or a typed CLR array.</summary>
    public object Value { get; }

    /// <summary>Number of elements of an array value.</summary>
    public int ArrayLength => Value is Array array
        ? array.Length
        : throw Mismatch("an array");

    public string AsString() => Value as string ?? throw Mismatch("a string");

    public bool AsBool() => Value is bool b ? b : throw Mismatch("a bool");

    /// <summary>Any integer type, widened to long (a uint64 above long.MaxValue is an error).</summary>
    public long AsInt64() => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        _ => throw Mismatch("an integer that fits in 64 signed bits"),
    };

    /// <summary>An integer value that fits in int (ids, counts, sizes).</summary>
    public int AsInt32()
    {
        long v = AsInt64();
        return v is >= int.MinValue and <= int.MaxValue ? (int)v : throw Mismatch("an integer that fits in 32 bits");
    }

    /// <summary>A float or integer value, widened to double.</summary>
    public double AsDouble() => Value switch
    {
        float v => v,
        double v => v,
        _ when Type is not (GgufValueType.Array or GgufValueType.String or GgufValueType.Bool) => AsInt64(),
        _ => throw Mismatch("a number"),
    };

    public float AsSingle() => (float)AsDouble();

    public IReadOnlyList<string> AsStringArray() => Value as string[] ?? throw Mismatch("an array of strings");

    /// <summary>An array of float32 values (token scores).</summary>
    public IReadOnlyList<float> AsSingleArray() => Value as float[] ?? throw Mismatch("an array of float32");

    /// <summary>An array of any integer element type, converted to int (token types, ids).</summary>
    public int[] AsInt32Array()
    {
        if (Value is int[] ints)
        {
            return (int[])ints.Clone();
        }

        if (Value is not Array array || ElementType is null or GgufValueType.Float32 or GgufValueType.Float64
            or GgufValueType.String or GgufValueType.Bool or GgufValueType.Array)
        {
            throw Mismatch("an array of integers");
        }

        var result = new int[array.Length];
        for (int i = 0; i < result.Length; i++)
        {
            long v = Convert.ToInt64(array.GetValue(i), CultureInfo.InvariantCulture);
            result[i] = v is >= int.MinValue and <= int.MaxValue
                ? (int)v
                : throw new InvalidDataException($"GGUF metadata '{Key}': element {i} ({v}) does not fit in 32 bits.");
        }

        return result;
    }

    public override string ToString() => Value switch
    {
        string s => s,
        Array a => $"[{ElementType} x {a.Length}]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? string.Empty,
    };

    private InvalidDataException Mismatch(string wanted) =>
        new($"GGUF metadata '{Key}' is {Describe()}, not {wanted}.");

    private string Describe() => Type == GgufValueType.Array ? $"an array of {ElementType}" : $"a {Type}";
}
