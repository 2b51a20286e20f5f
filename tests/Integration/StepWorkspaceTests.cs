using Pipeline.Inference.Models;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

/// <summary>
/// The model call's reusable buffers are bounded by the recent need: after a big batch they come
/// back to the size of the batches that follow, and a mix of sizes does not reallocate per call.
/// (The process-wide effect, RSS that plateaus under a repeated load, is the bench's
/// <c>--rounds</c> mode, docs/PERFORMANCE.md; these tests assert on capacities only.)
/// </summary>
public sealed class StepWorkspaceTests
{
    // dim 64, 2 layers, 4 heads of 16, context 512.
    private static readonly LlamaConfig Config = new(64, 96, 2, 4, 4, 256, 512, SharedClassifier: true);
    private const int Block = 64;

    /// <summary>A cache of <paramref name="positions"/> whose every key and value is <paramref name="value"/>.</summary>
    private static KvCache Filled(int positions, float value = 1)
    {
        var cache = new KvCache(Config, initialCapacity: positions);
        var data = Enumerable.Repeat(value, Config.KvHeads * positions * Config.HeadDim).ToArray();
        for (int l = 0; l < Config.Layers; l++)
            cache.Append(data, data, l, row: 0, total: positions, start: 0, count: positions, lastLayer: l == Config.Layers - 1);
        return cache;
    }

    private static void Stage(StepWorkspace workspace, KvCache[] caches)
    {
        int past = (caches.Max(c => c.Length) + Block - 1) / Block * Block;
        workspace.Stage(caches.Select(c => new SequenceStep(c, new[] { 1 })).ToArray(), past, Config, caches.Length);
    }

    private static long StagedBytes(int rows, int past) => 2L * Config.Layers * rows * Config.KvHeads * past * Config.HeadDim * sizeof(float);

    [Fact]
    public void A_step_workspace_shrinks_its_staged_past_back_to_the_recent_need_after_a_big_batch()
    {
        var workspace = new StepWorkspace();
        var big = Enumerable.Range(0, 16).Select(_ => Filled(440)).ToArray();
        Stage(workspace, big);
        Assert.True(workspace.HeldBytes >= StagedBytes(16, 448), $"the big batch's past is staged: {workspace.HeldBytes} bytes");

        var small = new[] { Filled(30) };
        // The window that saw the big batch keeps it; the next one, of small batches only, cuts it.
        for (int call = 0; call < 2 * ReusableBuffer<float>.Window; call++) Stage(workspace, small);

        // One row of 64 positions is what the batches now need: the 16 × 448 staged before are gone.
        Assert.Equal(StagedBytes(1, 64), workspace.HeldBytes);
        Assert.Equal(64, workspace.PastStride);
    }

    [Fact]
    public void A_step_workspace_re_lays_out_its_past_in_place_when_the_stride_changes_and_copies_the_rows_afresh()
    {
        var workspace = new StepWorkspace();
        Stage(workspace, Enumerable.Range(0, 4).Select(i => Filled(100 + i, value: 9)).ToArray());
        var keys = workspace.Keys(0);
        Assert.Equal(128, workspace.PastStride);

        // Shorter sequences now: the stride drops a block, the arrays stay, every row is laid out anew.
        var shorter = Enumerable.Range(0, 4).Select(i => Filled(60, value: i + 1)).ToArray();
        Stage(workspace, shorter);
        Assert.Equal(64, workspace.PastStride);
        Assert.Same(keys, workspace.Keys(0));
        // Row 1, head 2 starts at (1 × 4 + 2) × 64 positions: its keys, then zeros up to the stride.
        int start = (1 * Config.KvHeads + 2) * 64 * Config.HeadDim;
        Assert.Equal(2f, workspace.Keys(0)[start]);
        Assert.Equal(2f, workspace.Keys(0)[start + 60 * Config.HeadDim - 1]);
        Assert.Equal(0f, workspace.Keys(0)[start + 60 * Config.HeadDim]);
    }

    [Fact]
    public void A_buffer_used_by_a_mix_of_big_and_small_calls_is_allocated_once_not_once_per_call()
    {
        var buffer = new ReusableBuffer<float>();
        int reallocations = 0;
        for (int call = 0; call < 10 * ReusableBuffer<float>.Window; call++)
        {
            buffer.Get(call % 2 == 0 ? 1_000_000 : 1_000, out bool reallocated);
            if (reallocated) reallocations++;
        }
        Assert.Equal(1, reallocations);
        Assert.Equal(1_000_000, buffer.Array.Length);
    }

    [Fact]
    public void A_buffer_that_grew_for_a_peak_is_cut_to_the_largest_need_of_the_next_window()
    {
        var buffer = new ReusableBuffer<float>();
        buffer.Get(4_000_000);
        for (int call = 1; call < ReusableBuffer<float>.Window; call++) buffer.Get(100_000);
        Assert.Equal(4_000_000, buffer.Array.Length); // the peak is in this window: kept
        for (int call = 0; call < ReusableBuffer<float>.Window; call++) buffer.Get(call == 3 ? 300_000 : 100_000);
        Assert.Equal(300_000, buffer.Array.Length); // more than 4 × 300,000: cut at the window's end
    }

    [Fact]
    public void A_cached_tensor_is_reused_while_its_buffer_extent_and_shape_hold_and_made_again_when_any_changes()
    {
        using var tensors = new OrtValueCache();
        var buffer = new float[16];
        var first = tensors.Get(0, buffer, 0, 8, [2, 4]);
        Assert.Same(first, tensors.Get(0, buffer, 0, 8, [2, 4]));

        // The tensor is a view: what the buffer holds at the call is what the model reads.
        buffer[5] = 7;
        Assert.Equal(7, first.GetTensorDataAsSpan<float>()[5]);

        var reshaped = tensors.Get(0, buffer, 0, 8, [4, 2]);
        Assert.NotSame(first, reshaped);
        var moved = tensors.Get(0, buffer, 8, 8, [4, 2]);
        Assert.NotSame(reshaped, moved);
        Assert.Equal(0, moved.GetTensorDataAsSpan<float>()[5]);
        var other = tensors.Get(0, new float[16], 8, 8, [4, 2]);
        Assert.NotSame(moved, other);
        // Another slot over the same buffer is its own tensor.
        Assert.NotSame(other, tensors.Get(1, buffer, 8, 8, [4, 2]));
    }
}
