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
        RunOptions = NewRunOptions(shelf);
        if (shelf.SmallRows > 0)
        {
            SmallBinding = shelf.NewSmallBinding!();
            SmallRunOptions = NewRunOptions(shelf);
        }
        long slotsBytes = shelf.RowsPerCall * shelf.SlotBytes;
        try
        {
            int rows = shelf.RowsPerCall, total = shelf.Stride + 1;
            Ids = shelf.Memory.Allocate(rows * sizeof(long));
            Positions = shelf.Memory.Allocate(rows * sizeof(long));
            Logits = shelf.Memory.Allocate(shelf.LogitsBytes);
            HostLogits = shelf.Memory.AllocateHost(shelf.LogitsBytes);
            HostLogitsMemory = new HostFloats(HostLogits, (int)(shelf.LogitsBytes / sizeof(float))).Memory;
            Mask = shelf.GroupQuery ? shelf.Memory.Allocate(rows * sizeof(int)) : shelf.Memory.Allocate((long)rows * total * sizeof(long));
            if (shelf.PicksLastPosition)
            {
                // One token per row: the one-hot that picks it is a one, for every call.
                Pick = shelf.Memory.Allocate(rows * sizeof(float));
                var ones = Enumerable.Repeat(1f, rows).ToArray();
                unsafe { fixed (float* o = ones) shelf.Memory.Upload(Pick, o, rows * sizeof(float)); }
                shelf.Memory.Synchronize();
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
            }
            Bind(Binding, rows);
            // The small call sees the part's first rows: every tensor is laid out rows first, so
            // they are the first bytes of each block.
            if (SmallBinding is not null) Bind(SmallBinding, shelf.SmallRows);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static RunOptions NewRunOptions(ResidentShelf shelf)
    {
        var options = new RunOptions();
        if (shelf.GraphId is { } next) options.AddRunConfigEntry("gpu_graph_id", next().ToString(System.Globalization.CultureInfo.InvariantCulture));
        return options;
    }

    /// <summary>Points <paramref name="binding"/>'s every input and output at the part's memory, for calls of <paramref name="rows"/> rows.</summary>
    private void Bind(OrtIoBinding binding, int rows)
    {
        var shelf = _shelf;
        var c = shelf.Config;
        int total = shelf.Stride + 1, perCall = shelf.RowsPerCall;
        long slotsBytes = rows * shelf.SlotBytes, newBytes = shelf.NewBytes / perCall * rows, logitsBytes = shelf.LogitsBytes / perCall * rows;
        long[] pastShape = [rows, c.KvHeads, shelf.Stride, c.HeadDim];
        var pastType = shelf.ElementBytes == 2 ? TensorElementType.Float16 : TensorElementType.Float;
        long[] newShape = [rows, c.KvHeads, 1, c.HeadDim];
        binding.BindInput("input_ids", Tensor(Ids, [rows, 1], rows * sizeof(long), TensorElementType.Int64));
        binding.BindInput("position_ids", Tensor(Positions, [rows, 1], rows * sizeof(long), TensorElementType.Int64));
        if (shelf.GroupQuery)
        {
            binding.BindInput(Pipeline.Inference.Onnx.LlamaOnnxExporter.SeqlensInput, Tensor(Mask, [rows], rows * sizeof(int), TensorElementType.Int32));
            // The kernel reads the call's total length on the host (an input in CPU memory), and
            // sizes its work by it: the pool's stride, the same for every call of the part.
            var total1 = OrtValue.CreateTensorValueFromMemory(new[] { shelf.Stride }, [1]);
            _bound.Add(total1);
            binding.BindInput(Pipeline.Inference.Onnx.LlamaOnnxExporter.TotalLengthInput, total1);
        }
        else
        {
            binding.BindInput("attention_mask", Tensor(Mask, [rows, total], (long)rows * total * sizeof(long), TensorElementType.Int64));
        }
        binding.BindOutput("logits", Tensor(Logits, [rows, 1, c.VocabSize], logitsBytes));
        if (shelf.PicksLastPosition)
            binding.BindInput(Pipeline.Inference.Onnx.LlamaOnnxExporter.LastPositionInput, Tensor(Pick, [rows, 1, 1], rows * sizeof(float)));
        for (int l = 0; l < c.Layers; l++)
        {
            binding.BindInput($"past_key_values.{l}.key", Tensor(Keys[l], pastShape, slotsBytes, pastType));
            binding.BindInput($"past_key_values.{l}.value", Tensor(Values[l], pastShape, slotsBytes, pastType));
            if (shelf.GroupQuery)
            {
                // The kernel writes each row's new position into its slot: present is the past.
                binding.BindOutput($"{Pipeline.Inference.Onnx.LlamaOnnxExporter.PresentPrefix}{l}.key", Tensor(Keys[l], pastShape, slotsBytes, pastType));
                binding.BindOutput($"{Pipeline.Inference.Onnx.LlamaOnnxExporter.PresentPrefix}{l}.value", Tensor(Values[l], pastShape, slotsBytes, pastType));
            }
            else
            {
                binding.BindOutput($"new_key_values.{l}.key", Tensor(NewKeys[l], newShape, newBytes));
                binding.BindOutput($"new_key_values.{l}.value", Tensor(NewValues[l], newShape, newBytes));
            }
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

    /// <summary>The small call's binding over the first <see cref="ResidentShelf.SmallRows"/> slots, its run options (its own CUDA graph) and calls; null without one.</summary>
    public OrtIoBinding? SmallBinding { get; }
    public RunOptions? SmallRunOptions { get; }
    public int SmallCalls { get; set; }

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
        SmallBinding?.Dispose();
        SmallRunOptions?.Dispose();
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
