using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// One call's worth of slots: each layer's past and new positions, the call's inputs and logits, and
/// the binding that points the graph at them (and, with CUDA graphs, the graph captured over them).
/// Held by one pool at a time; between pools it waits on its model's <see cref="ResidentShelf"/>.
/// </summary>
internal sealed class ResidentPart : IDisposable
{
    private readonly ResidentShelf _shelf;
    private readonly List<OrtValue> _bound = [];

    public ResidentPart(ResidentShelf shelf)
    {
        _shelf = shelf;
        var c = shelf.Config;
        int layers = c.Layers;
        Keys = new nint[layers];
        Values = new nint[layers];
        NewKeys = new nint[layers];
        NewValues = new nint[layers];
        Binding = shelf.NewBinding();
        RunOptions = new RunOptions();
        if (shelf.GraphId is { } next) RunOptions.AddRunConfigEntry("gpu_graph_id", next().ToString(System.Globalization.CultureInfo.InvariantCulture));
        long slotsBytes = shelf.RowsPerCall * shelf.SlotBytes;
        long[] pastShape = [shelf.RowsPerCall, c.KvHeads, shelf.Stride, c.HeadDim];
        var pastType = shelf.ElementBytes == 2 ? TensorElementType.Float16 : TensorElementType.Float;
        long[] newShape = [shelf.RowsPerCall, c.KvHeads, 1, c.HeadDim];
        try
        {
            int rows = shelf.RowsPerCall, total = shelf.Stride + 1;
            Ids = shelf.Memory.Allocate(rows * sizeof(long));
            Positions = shelf.Memory.Allocate(rows * sizeof(long));
            Logits = shelf.Memory.Allocate(shelf.LogitsBytes);
            HostLogits = shelf.Memory.AllocateHost(shelf.LogitsBytes);
            HostLogitsMemory = new HostFloats(HostLogits, (int)(shelf.LogitsBytes / sizeof(float))).Memory;
            Binding.BindInput("input_ids", Tensor(Ids, [rows, 1], rows * sizeof(long), TensorElementType.Int64));
            Binding.BindInput("position_ids", Tensor(Positions, [rows, 1], rows * sizeof(long), TensorElementType.Int64));
            if (shelf.GroupQuery)
            {
                Mask = shelf.Memory.Allocate(rows * sizeof(int));
                Binding.BindInput(Pipeline.Inference.Onnx.LlamaOnnxExporter.SeqlensInput, Tensor(Mask, [rows], rows * sizeof(int), TensorElementType.Int32));
                // The kernel reads the call's total length on the host (an input in CPU memory), and
                // sizes its work by it: the pool's stride, the same for every call of the part.
                var total1 = OrtValue.CreateTensorValueFromMemory(new[] { shelf.Stride }, [1]);
                _bound.Add(total1);
                Binding.BindInput(Pipeline.Inference.Onnx.LlamaOnnxExporter.TotalLengthInput, total1);
            }
            else
            {
                Mask = shelf.Memory.Allocate((long)rows * total * sizeof(long));
                Binding.BindInput("attention_mask", Tensor(Mask, [rows, total], (long)rows * total * sizeof(long), TensorElementType.Int64));
            }
            Binding.BindOutput("logits", Tensor(Logits, [rows, 1, c.VocabSize], shelf.LogitsBytes));
            if (shelf.PicksLastPosition)
            {
                // One token per row: the one-hot that picks it is a one, for every call.
                Pick = shelf.Memory.Allocate(rows * sizeof(float));
                var ones = Enumerable.Repeat(1f, rows).ToArray();
                unsafe { fixed (float* o = ones) shelf.Memory.Upload(Pick, o, rows * sizeof(float)); }
                shelf.Memory.Synchronize();
                Binding.BindInput(Pipeline.Inference.Onnx.LlamaOnnxExporter.LastPositionInput, Tensor(Pick, [rows, 1, 1], rows * sizeof(float)));
            }
            // Keys and values of every layer in one block each, layer by layer (K0, V0, K1, V1, ...), so
            // a row's new position reaches every layer's past in one 3D copy and all new positions
            // come back in one download.
            Pasts = shelf.Memory.Allocate(2L * layers * slotsBytes);
            News = shelf.Memory.Allocate(2L * layers * shelf.NewBytes);
            for (int l = 0; l < layers; l++)
            {
                Keys[l] = Pasts + (nint)(2L * l * slotsBytes);
                Values[l] = Pasts + (nint)((2L * l + 1) * slotsBytes);
                NewKeys[l] = News + (nint)(2L * l * shelf.NewBytes);
                NewValues[l] = News + (nint)((2L * l + 1) * shelf.NewBytes);
                Binding.BindInput($"past_key_values.{l}.key", Tensor(Keys[l], pastShape, slotsBytes, pastType));
                Binding.BindInput($"past_key_values.{l}.value", Tensor(Values[l], pastShape, slotsBytes, pastType));
                if (shelf.GroupQuery)
                {
                    // The kernel writes each row's new position into its slot: present is the past.
                    Binding.BindOutput($"{Pipeline.Inference.Onnx.LlamaOnnxExporter.PresentPrefix}{l}.key", Tensor(Keys[l], pastShape, slotsBytes, pastType));
                    Binding.BindOutput($"{Pipeline.Inference.Onnx.LlamaOnnxExporter.PresentPrefix}{l}.value", Tensor(Values[l], pastShape, slotsBytes, pastType));
                }
                else
                {
                    Binding.BindOutput($"new_key_values.{l}.key", Tensor(NewKeys[l], newShape, shelf.NewBytes));
                    Binding.BindOutput($"new_key_values.{l}.value", Tensor(NewValues[l], newShape, shelf.NewBytes));
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Every layer's past keys and values: [layers, 2 (keys, values), rows, kv_heads, stride, head_dim].</summary>
    public nint Pasts { get; private set; }

    /// <summary>
    /// Every layer's new keys and values of one call: [layers, 2, rows, kv_heads, 1, head_dim] (the
    /// block graph's outputs; with GroupQueryAttention, where the pool gathers them from the slots to download).
    /// </summary>
    public nint News { get; private set; }

    public nint[] Keys { get; }
    public nint[] Values { get; }
    public nint[] NewKeys { get; }
    public nint[] NewValues { get; }
    public nint Ids { get; private set; }
    public nint Positions { get; private set; }
    /// <summary>The attention mask [rows, stride + 1] (int64), or with GroupQueryAttention each row's seqlens_k [rows] (int32).</summary>
    public nint Mask { get; private set; }
    public nint Logits { get; private set; }

    /// <summary>Host memory (pinned on CUDA) the call's logits come back to, [rows, vocab], and the same as <see cref="Memory{T}"/>.</summary>
    public nint HostLogits { get; private set; }
    public Memory<float> HostLogitsMemory { get; private set; }

    /// <summary>The decode call's last_position input: [rows, 1, 1] ones (0 when the graph has none).</summary>
    public nint Pick { get; private set; }
    public OrtIoBinding Binding { get; }
    public RunOptions RunOptions { get; }
    public int Calls { get; set; }

    private OrtValue Tensor(nint data, long[] shape, long bytes, TensorElementType type = TensorElementType.Float)
    {
        var value = OrtValue.CreateTensorValueWithData(_shelf.Memory.Info, type, shape, data, bytes);
        _bound.Add(value);
        return value;
    }

    public void Dispose()
    {
        Binding.Dispose();
        RunOptions.Dispose();
        foreach (var value in _bound) value.Dispose();
        _bound.Clear();
        foreach (var pointer in new[] { Ids, Positions, Mask, Logits, Pick, Pasts, News })
            if (pointer != 0) _shelf.Memory.Free(pointer);
        Ids = Positions = Mask = Logits = Pick = Pasts = News = 0;
        if (HostLogits != 0) _shelf.Memory.FreeHost(HostLogits);
        HostLogits = 0;
        HostLogitsMemory = Memory<float>.Empty;
        foreach (var pointers in new[] { Keys, Values, NewKeys, NewValues })
            Array.Clear(pointers);
    }
}
