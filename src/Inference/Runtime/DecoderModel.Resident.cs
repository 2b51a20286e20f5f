using Microsoft.ML.OnnxRuntime;
using Pipeline.Inference.Runtime.Resident;

namespace Pipeline.Inference.Runtime;

// Decode calls over a resident pool: the pasts stay where the model runs (see ResidentKvPool).
internal sealed partial class DecoderModel
{
    // Where resident pools live: CUDA memory, host memory (CPU, for tests), or none (staged pasts).
    private DeviceMemory? _memory;

    /// <summary>"CUDA" or "host" when decode calls read a resident pool; null when each call stages the pasts.</summary>
    public string? ResidentKv => _memory?.Name;

    /// <summary>Why a resident pool was wanted on CUDA but is not used, or null.</summary>
    public string? ResidentFallbackReason { get; private set; }

    private void ChooseResidence(bool? requested)
    {
        if (requested == false) return;
        bool fixedShapes = Shapes.DecodeRows > 0 && Shapes.PastToContext;
        if (!fixedShapes || !_newOnly)
        {
            if (requested == true)
                throw new ArgumentException(!_newOnly
                    ? "--resident-kv needs a graph written by the pipeline converter (new_key_values outputs)"
                    : $"--resident-kv needs fixed decode shapes (decode=N and context in --batch-shapes), not '{Shapes}'");
            return;
        }
        if (ExecutionProvider == "CUDA")
        {
            _memory = CudaMemory.TryCreate(0, out var reason);
            if (_memory is null)
            {
                if (requested == true) throw new InvalidOperationException($"--resident-kv: {reason}");
                ResidentFallbackReason = $"{reason}; decode calls stage their pasts from the host";
            }
        }
        else if (requested == true)
        {
            _memory = new HostMemory();
        }
    }

    private static bool FeedsOneTokenEach(IReadOnlyList<SequenceStep> rows)
    {
        foreach (var row in rows)
            if (row.Tokens.Length != 1) return false;
        return rows.Count > 0;
    }

    /// <summary>
    /// One decode step over the workspace's resident pool: every part of <see cref="BatchShapes.DecodeRows"/>
    /// slots that holds a row runs one call of the fixed shape, reading its pasts in place.
    /// </summary>
    private void StepResident(IReadOnlyList<SequenceStep> rows, StepWorkspace workspace, Span<float> logits)
    {
        var c = Config;
        int vocab = c.VocabSize, slots = Shapes.DecodeRows;
        int stride = Shapes.Past(0, AttentionBlock, c.SeqLen), total = stride + 1;
        if (logits.Length < rows.Count * vocab) throw new ArgumentException("logits buffer too small", nameof(logits));
        foreach (var r in rows)
            if (r.Cache.Length + 1 > c.SeqLen)
                throw new InvalidOperationException($"sequence would reach {r.Cache.Length + 1} positions, past the context length {c.SeqLen}");
        var pool = workspace.ResidentPool(() => new ResidentKvPool(_memory!, c, slots, stride, _session.CreateIoBinding));
        bool completed = false;
        try
        {
            var placed = pool.Place(rows);
            var members = new List<int>(slots);
            for (int part = 0; part < pool.PartCount; part++)
            {
                members.Clear();
                for (int b = 0; b < rows.Count; b++)
                    if (placed[b] / slots == part) members.Add(b);
                if (members.Count == 0) continue;
                RunPart(pool, part, rows, members, placed, workspace, logits, total);
            }
            pool.Synchronize();
            completed = true;
        }
        finally
        {
            if (!completed) pool.Forget();
        }
    }

    private void RunPart(ResidentKvPool pool, int part, IReadOnlyList<SequenceStep> rows, List<int> members, int[] placed, StepWorkspace workspace, Span<float> logits, int total)
    {
        int slots = pool.RowsPerCall, vocab = Config.VocabSize, stride = total - 1;
        var ids = workspace.InputIds.Get(slots);
        var positions = workspace.PositionIds.Get(slots);
        var mask = workspace.AttentionMask.Get(slots * total);
        Array.Clear(ids, 0, slots);
        Array.Clear(positions, 0, slots);
        Array.Clear(mask, 0, slots * total);
        // Empty slots feed token 0 at position 0 that sees only itself, as padding rows do when staged.
        for (int j = 0; j < slots; j++) mask[j * total + stride] = 1;
        foreach (int b in members)
        {
            int j = placed[b] % slots, length = rows[b].Cache.Length;
            ids[j] = rows[b].Tokens.Span[0];
            positions[j] = length;
            mask.AsSpan(j * total, length).Fill(1);
        }
        var outLogits = workspace.Logits.Get(slots * vocab);
        var binding = pool.Binding(part);
        using var idsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, ids.AsMemory(0, slots), [slots, 1]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, mask.AsMemory(0, slots * total), [slots, total]);
        using var positionsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, positions.AsMemory(0, slots), [slots, 1]);
        using var logitsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, outLogits.AsMemory(0, slots * vocab), [slots, 1, vocab]);
        binding.BindInput("input_ids", idsValue);
        binding.BindInput("attention_mask", maskValue);
        binding.BindInput("position_ids", positionsValue);
        binding.BindOutput("logits", logitsValue);
        _session.RunWithBinding(_runOptions, binding);
        binding.SynchronizeBoundOutputs();
        foreach (int b in members)
            outLogits.AsSpan(placed[b] % slots * vocab, vocab).CopyTo(logits.Slice(b * vocab, vocab));
        pool.Append(part, rows, members, placed, workspace);
    }
}
