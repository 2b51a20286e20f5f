using Pipeline.Inference.Runtime;
using Pipeline.Testing;

namespace Pipeline.Integration;

/// <summary>
/// A cache's last positions may be held by a resident pool (where decode calls wrote them) and come
/// back only when the cache is read: every read sees them, and a cache whose holder lost them says so.
/// </summary>
public sealed class KvCacheHeldPositionsTests
{
    // Writes back position p of layer l, head h as the value p + 1000·l + 100·h (keys) and its negative (values).
    private sealed class Holder : IHeldPositions
    {
        public int Calls { get; private set; }

        public void WriteBack(KvCache cache)
        {
            Calls++;
            var c = SharedModel.Instance.Decoder.Config;
            int count = cache.Length - cache.HostLength;
            for (int l = 0; l < c.Layers; l++)
            {
                var keys = new float[c.KvHeads * count * c.HeadDim];
                for (int h = 0; h < c.KvHeads; h++)
                    for (int p = 0; p < count; p++)
                        keys.AsSpan((h * count + p) * c.HeadDim, c.HeadDim).Fill(cache.HostLength + p + 1000 * l + 100 * h);
                cache.WriteHeld(l, keys, keys.Select(k => -k).ToArray(), l == c.Layers - 1);
            }
        }
    }

    [Fact]
    public void Held_positions_are_written_back_once_before_the_first_read_and_the_cache_grows_to_take_them()
    {
        var c = SharedModel.Instance.Decoder.Config;
        using var cache = new KvCache(c, initialCapacity: 4);
        cache.Append(new float[c.KvHeads * 3 * c.HeadDim], new float[c.KvHeads * 3 * c.HeadDim], 0, 0, 3, 0, 3, false);
        for (int l = 1; l < c.Layers; l++)
            cache.Append(new float[c.KvHeads * 3 * c.HeadDim], new float[c.KvHeads * 3 * c.HeadDim], l, 0, 3, 0, 3, l == c.Layers - 1);
        var holder = new Holder();
        for (int step = 0; step < 5; step++) cache.AdvanceHeld(1, holder);

        Assert.Equal(8, cache.Length);
        Assert.Equal(3, cache.HostLength);
        Assert.Equal(4, cache.Capacity); // nothing grew while the positions were held
        Assert.Equal(0, holder.Calls);

        var keys = cache.Keys(2, 1).ToArray();
        Assert.Equal(1, holder.Calls);
        Assert.Equal(8, cache.HostLength);
        Assert.True(cache.Capacity >= 8);
        for (int p = 3; p < 8; p++) Assert.Equal(p + 2000 + 100, keys[p * c.HeadDim]);
        Assert.Equal(-(5 + 2000 + 100f), cache.Values(2, 1)[5 * c.HeadDim]);
        _ = cache.Clone();
        Assert.Equal(1, holder.Calls);
    }

    [Fact]
    public void A_cache_whose_holder_lost_its_positions_refuses_to_be_read_and_a_disposed_one_is_never_written_back()
    {
        var c = SharedModel.Instance.Decoder.Config;
        var holder = new Holder();
        using var lost = new KvCache(c);
        lost.AdvanceHeld(2, holder);
        lost.LoseHeld("device gone");
        var e = Assert.Throws<InvalidOperationException>(() => lost.Keys(0, 0).ToArray());
        Assert.Contains("device gone", e.Message);

        var gone = new KvCache(c);
        gone.AdvanceHeld(2, holder);
        gone.Dispose();
        Assert.False(gone.HasHeldPositions);
        Assert.Equal(0, holder.Calls);
    }
}
