using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

/// <summary>
/// Finished KV caches give their arrays back to a shelf, and the next cache of the same capacity
/// takes them instead of allocating: zeroed, within the shelf's bound, and through the pipeline a
/// second wave of requests allocates no KV memory while producing the first wave's tokens.
/// </summary>
public sealed class KvArrayShelfTests
{
    private static readonly Pipeline.Inference.Models.LlamaConfig Config = SharedModel.Instance.Decoder.Config;

    private static KvCache Written(KvArrayShelf shelf, int capacity)
    {
        var cache = new KvCache(Config, initialCapacity: capacity, maxCapacity: capacity, shelf: shelf);
        var data = Enumerable.Repeat(7f, Config.KvHeads * 3 * Config.HeadDim).ToArray();
        for (int l = 0; l < Config.Layers; l++)
            cache.Append(data, data, l, row: 0, total: 3, start: 0, count: 3, lastLayer: l == Config.Layers - 1);
        return cache;
    }

    private static ref readonly float FirstKey(KvCache cache) => ref MemoryMarshal.GetReference(cache.KeyLayer(0));

    [Fact]
    public void A_disposed_cache_gives_its_arrays_zeroed_to_the_next_cache_of_its_capacity_and_to_no_other()
    {
        var shelf = new KvArrayShelf(maxBytes: 1L << 30);
        var first = Written(shelf, capacity: 40);
        ref readonly float before = ref FirstKey(first);
        first.Dispose();

        using var other = new KvCache(Config, initialCapacity: 41, maxCapacity: 41, shelf: shelf);
        Assert.Equal(2, shelf.Missed); // the first cache's own making, and capacity 41
        Assert.Equal(0, shelf.Reused);
        using var next = new KvCache(Config, initialCapacity: 40, maxCapacity: 40, shelf: shelf);

        Assert.Equal(1, shelf.Reused);
        Assert.True(Unsafe.AreSame(ref Unsafe.AsRef(in before), ref Unsafe.AsRef(in FirstKey(next))), "the second cache of capacity 40 got new arrays");
        Assert.Equal(0, next.Length);
        for (int l = 0; l < Config.Layers; l++)
        {
            Assert.All(next.KeyLayer(l).ToArray(), v => Assert.Equal(0f, v));
            Assert.All(next.ValueLayer(l).ToArray(), v => Assert.Equal(0f, v));
        }
        Assert.Equal(0, shelf.Bytes);
    }

    [Fact]
    public void A_shelf_keeps_no_more_than_its_bound_and_leaves_the_rest_to_the_garbage_collector()
    {
        long oneSet = 40 * KvCache.BytesPerPosition(Config);
        var shelf = new KvArrayShelf(maxBytes: oneSet);
        foreach (var cache in Enumerable.Range(0, 3).Select(_ => Written(shelf, capacity: 40)).ToArray()) cache.Dispose();
        long missed = shelf.Missed;

        using var a = new KvCache(Config, initialCapacity: 40, maxCapacity: 40, shelf: shelf);
        Assert.Equal(0, shelf.Bytes); // one set kept (and taken), two dropped
        using var b = new KvCache(Config, initialCapacity: 40, maxCapacity: 40, shelf: shelf);
        Assert.Equal(1, shelf.Reused);
        Assert.Equal(missed + 1, shelf.Missed);
    }

    [Fact]
    public async Task A_second_wave_of_requests_reuses_the_first_waves_kv_arrays_and_gets_its_tokens()
    {
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxBatch = 4 });
        GenerationRequest Request(int i) => new() { Prompt = "Once upon a time", MaxTokens = 24, Seed = (ulong)i, Sampling = new() { Temperature = 1f } };

        var first = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => host.CompleteAsync(Request(i))));
        long reusedBefore = host.KvShelf.Reused;
        var second = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => host.CompleteAsync(Request(i))));

        // Every cache of the second wave found a finished one of its capacity on the shelf.
        Assert.Equal(4, host.KvShelf.Reused - reusedBefore);
        for (int i = 0; i < 4; i++) Assert.Equal(first[i].CompletionIds, second[i].CompletionIds);
        Assert.Equal(0, host.KvMemory.Bytes);
    }
}
