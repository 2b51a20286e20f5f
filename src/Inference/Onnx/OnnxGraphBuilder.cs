using System.Runtime.InteropServices;
using Google.Protobuf;
using Pipeline.Inference.Onnx.Schema;

namespace Pipeline.Inference.Onnx;

/// <summary>
/// Accumulates the nodes, initializers, inputs and outputs of one ONNX graph, naming intermediate
/// values so that a graph reads like the code that built it.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph = new();
    private readonly Dictionary<string, int> _nameCounts = new();
    private readonly Dictionary<string, string> _constants = new();

    public OnnxGraphBuilder(string name) => _graph.Name = name;

    /// <summary>A builder for a subgraph (an If branch) whose names cannot clash with this graph's.</summary>
    public OnnxGraphBuilder Branch(string name)
    {
        var branch = new OnnxGraphBuilder(name);
        foreach (var (key, count) in _nameCounts) branch._nameCounts[key] = count + 1000;
        branch._prefix = name + ".";
        return branch;
    }

    private string _prefix = "";

    /// <summary>Declares a subgraph output of the given element type (shape left to inference).</summary>
    public void BranchOutput(string value, TensorProto.Types.DataType type)
        => _graph.Output.Add(new ValueInfoProto { Name = value, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } } });

    public static AttributeProto Attr(string name, GraphProto graph) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = graph };

    public GraphProto Graph => _graph;

    public string Input(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        _graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    public void Output(string value, string name, TensorProto.Types.DataType type, params object[] dims)
    {
        if (value != name) Node("Identity", [value], name: name, outputName: name);
        _graph.Output.Add(ValueInfo(name, type, dims));
    }

    /// <summary>Adds a node and returns its (first) output's name.</summary>
    public string Node(string op, string[] inputs, string? name = null, string? outputName = null, params AttributeProto[] attributes)
        => NodeMulti(op, inputs, 1, name, outputName is null ? null : [outputName], attributes)[0];

    public string[] NodeMulti(string op, string[] inputs, int outputs, string? name = null, string[]? outputNames = null, params AttributeProto[] attributes)
        => NodeIn("", op, inputs, outputs, name, outputNames, attributes);

    /// <summary>Adds a node of operator set <paramref name="domain"/> ("" for ai.onnx, "com.microsoft" for ONNX Runtime's contrib operators).</summary>
    public string[] NodeIn(string domain, string op, string[] inputs, int outputs, string? name = null, string[]? outputNames = null, params AttributeProto[] attributes)
    {
        var baseName = Unique(_prefix + (name ?? op));
        var node = new NodeProto { OpType = op, Name = baseName, Domain = domain };
        node.Input.AddRange(inputs);
        var outs = outputNames ?? Enumerable.Range(0, outputs).Select(i => outputs == 1 ? baseName : $"{baseName}_{i}").ToArray();
        node.Output.AddRange(outs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return outs;
    }

    /// <summary>Where weights go when the graph keeps its data outside the protobuf; null keeps them inline.</summary>
    public OnnxExternalData? ExternalData { get; init; }

    public string Weight(string name, float[] data, params long[] dims)
    {
        var t = NewWeight(name, TensorProto.Types.DataType.Float, dims, data.LongLength, "floats");
        if (ExternalData is { } external) external.Store(t, data); // in chunks: may pass 2 GB
        else t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan()));
        _graph.Initializer.Add(t);
        return t.Name;
    }

    /// <summary>A float16 initializer, rounded to nearest even from <paramref name="data"/>.</summary>
    public string WeightHalf(string name, float[] data, params long[] dims)
    {
        var halves = new Half[data.Length];
        for (int i = 0; i < data.Length; i++) halves[i] = (Half)data[i];
        return AddWeight(NewWeight(name, TensorProto.Types.DataType.Float16, dims, data.LongLength, "floats"), MemoryMarshal.AsBytes(halves.AsSpan()));
    }

    /// <summary>A uint8 initializer (packed quantized weights).</summary>
    public string Weight(string name, byte[] data, params long[] dims) =>
        AddWeight(NewWeight(name, TensorProto.Types.DataType.Uint8, dims, data.LongLength, "bytes"), data);

    // An initializer named uniquely after `name`, of `count` elements checked against its shape.
    private TensorProto NewWeight(string name, TensorProto.Types.DataType type, long[] dims, long count, string unit)
    {
        name = Unique($"{name}.weight");
        if (dims.Aggregate(1L, (a, b) => a * b) != count)
            throw new InvalidOperationException($"weight {name}: {count} {unit} for shape [{string.Join(", ", dims)}]");
        var t = new TensorProto { Name = name, DataType = (int)type };
        t.Dims.AddRange(dims);
        return t;
    }

    private string AddWeight(TensorProto t, ReadOnlySpan<byte> bytes)
    {
        if (ExternalData is { } external) external.Store(t, bytes);
        else t.RawData = ByteString.CopyFrom(bytes);
        _graph.Initializer.Add(t);
        return t.Name;
    }

    public string ConstInt64(params long[] values) => Constant("i64", values, TensorProto.Types.DataType.Int64, [values.Length]);
    public string ScalarInt64(long value) => Constant("i64s", [value], TensorProto.Types.DataType.Int64, []);
    public string ScalarFloat(float value) => Constant("f32s", [value], TensorProto.Types.DataType.Float, []);
    public string ConstFloat(float[] values, params long[] dims) => Constant("f32", values, TensorProto.Types.DataType.Float, dims);

    private string Constant<T>(string prefix, T[] values, TensorProto.Types.DataType type, long[] dims) where T : unmanaged
    {
        var key = $"{prefix}:{string.Join(',', dims)}:{string.Join(',', values)}";
        if (_constants.TryGetValue(key, out var existing)) return existing;
        var name = Unique($"const_{prefix}");
        var t = new TensorProto { Name = name, DataType = (int)type };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        _graph.Initializer.Add(t);
        _constants[key] = name;
        return name;
    }

    public static AttributeProto Attr(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    public static AttributeProto Attr(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    private string Unique(string name)
    {
        _nameCounts.TryGetValue(name, out var n);
        _nameCounts[name] = n + 1;
        return n == 0 ? name : $"{name}_{n}";
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d switch
            {
                string param => new TensorShapeProto.Types.Dimension { DimParam = param },
                int v => new TensorShapeProto.Types.Dimension { DimValue = v },
                long v => new TensorShapeProto.Types.Dimension { DimValue = v },
                _ => throw new ArgumentException($"unsupported dimension {d}"),
            });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
