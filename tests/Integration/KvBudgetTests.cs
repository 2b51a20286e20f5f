using Pipeline.Actors.Admission;

namespace Pipeline.Integration;

/// <summary>The KV budget on its own: what fits is granted at once, what does not waits in line, and every byte comes back.</summary>
public sealed class KvBudgetTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Reservations_that_fit_are_granted_at_once_and_disposing_them_returns_their_bytes()
    {
        var budget = new KvBudget(100);
        var a = await budget.ReserveAsync(60, CancellationToken.None);
        var b = await budget.ReserveAsync(40, CancellationToken.None);
        Assert.Equal(100, budget.ReservedBytes);
        Assert.Equal(0, budget.Waits);
        a.Dispose();
        b.Dispose();
        Assert.Equal(0, budget.ReservedBytes);
        Assert.Equal(100, budget.PeakReservedBytes);
    }

    [Fact]
    public async Task A_reservation_that_does_not_fit_waits_until_enough_is_released()
    {
        var budget = new KvBudget(100);
        var held = await budget.ReserveAsync(70, CancellationToken.None);
        var waiting = budget.ReserveAsync(50, CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);
        Assert.Equal(1, budget.Waiting);
        Assert.Equal(1, budget.Waits);
        held.Dispose();
        using var granted = await waiting.WaitAsync(Bound);
        Assert.Equal(50, budget.ReservedBytes);
        Assert.Equal(0, budget.Waiting);
    }

    [Fact]
    public async Task Waiters_are_served_in_arrival_order_and_a_small_one_does_not_pass_a_large_one()
    {
        var budget = new KvBudget(100);
        var held = await budget.ReserveAsync(90, CancellationToken.None);
        var large = budget.ReserveAsync(80, CancellationToken.None).AsTask();
        var small = budget.ReserveAsync(5, CancellationToken.None).AsTask();
        // 5 bytes would fit beside the 90 held, but the large request came first.
        Assert.False(small.IsCompleted);
        held.Dispose();
        using var first = await large.WaitAsync(Bound);
        using var second = await small.WaitAsync(Bound);
        Assert.Equal(85, budget.ReservedBytes);
        Assert.Equal(2, budget.Waits);
    }

    [Fact]
    public async Task A_waiter_cancelled_at_the_head_of_the_line_reserves_nothing_and_lets_the_next_one_through()
    {
        var budget = new KvBudget(100);
        using var held = await budget.ReserveAsync(60, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var head = budget.ReserveAsync(50, cancel.Token).AsTask();
        var next = budget.ReserveAsync(40, CancellationToken.None).AsTask();
        Assert.False(next.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => head.WaitAsync(Bound));
        using var granted = await next.WaitAsync(Bound);
        Assert.Equal(100, budget.ReservedBytes);
        Assert.Equal(0, budget.Waiting);
    }

    [Fact]
    public async Task Disposing_a_reservation_twice_returns_its_bytes_once()
    {
        var budget = new KvBudget(100);
        using var other = await budget.ReserveAsync(30, CancellationToken.None);
        var once = await budget.ReserveAsync(50, CancellationToken.None);
        once.Dispose();
        once.Dispose();
        Assert.Equal(30, budget.ReservedBytes);
    }

    [Fact]
    public async Task A_reservation_larger_than_the_whole_budget_is_refused_rather_than_left_waiting_forever()
    {
        var budget = new KvBudget(100);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => budget.ReserveAsync(101, CancellationToken.None).AsTask());
        Assert.Equal(0, budget.Waiting);
    }
}
