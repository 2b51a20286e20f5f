using Pipeline.Actors.Scheduling;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Sampling;
using Pipeline.Integration.Server;
using Pipeline.Wiring;

namespace Pipeline.Integration;

/// <summary>
/// Admission by KV memory: each request reserves its prompt + max_tokens positions at tokenize,
/// waits in line while the budget is short, never holds more cache than it reserved, and returns
/// every reserved byte however it ends.
/// </summary>
public sealed class KvAdmissionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static long PerPosition => KvCache.BytesPerPosition(SharedModel.Instance.Decoder.Config);
    private static int Context => SharedModel.Instance.Decoder.Config.SeqLen;

    private static PipelineHost Host(long budgetBytes, ISchedulingHook? hook = null, int maxBatch = 8) =>
        PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions
        {
            KvBudgetBytes = budgetBytes,
            Settings = new PipelineSettings { MaxBatch = maxBatch, Hook = hook ?? NoSchedulingHook.Instance },
        });

    private static void AssertAllReturned(PipelineHost host)
    {
        Assert.Equal(0, host.KvBudget.ReservedBytes);
        Assert.Equal(0, host.KvBudget.Waiting);
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.Equal(0, host.KvMemory.LiveCaches);
    }

    [Fact]
    public async Task A_request_reserves_its_prompt_plus_max_tokens_holds_no_more_cache_than_that_and_returns_both_when_it_finishes()
    {
        long reservedWhileRunning = -1, usedWhileRunning = -1;
        PipelineHost? running = null;
        var hook = new StageHook
        {
            OnHandOff = (point, n) =>
            {
                if (point != HandOff.Sampled || n != 30) return;
                reservedWhileRunning = running!.KvBudget.ReservedBytes;
                usedWhileRunning = running.KvMemory.Bytes;
            },
        };
        await using var host = running = Host(100 * PerPosition * Context, hook);
        var result = await host.CompleteAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 40, Sampling = new() { Temperature = 0 } }).WaitAsync(Bound);

        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal((result.PromptIds.Count + 40) * PerPosition, reservedWhileRunning);
        Assert.InRange(usedWhileRunning, 1, reservedWhileRunning);
        Assert.True(host.KvMemory.PeakBytes <= reservedWhileRunning, $"peak used {host.KvMemory.PeakBytes} > reserved {reservedWhileRunning}");
        AssertAllReturned(host);
    }

    [Fact]
    public async Task A_request_without_room_waits_for_kv_budget_and_one_cancelled_while_waiting_ends_cancelled_having_reserved_nothing()
    {
        var gate = new GateHook();
        // Room for one request of 40 tokens, not two.
        await using var host = Host(60 * PerPosition, gate);
        var request = new GenerationRequest { Prompt = "Lily", MaxTokens = 40, Sampling = new() { Temperature = 0 } };
        gate.Close(HandOff.Stepped, passFirst: 2);
        using var cancel = new CancellationTokenSource();
        Task<GenerationResult> first, second;
        try
        {
            first = host.CompleteAsync(request);
            await gate.Held.WaitAsync(Bound);
            second = host.CompleteAsync(request, cancel.Token);
            await Eventually.HoldsAsync(() => host.KvBudget.Waiting == 1, () => $"{host.KvBudget.Waiting} waiting, {host.KvBudget.ReservedBytes} reserved");
            long reservedByFirst = host.KvBudget.ReservedBytes;
            cancel.Cancel();
            var cancelled = await Outcome(second);
            Assert.True(cancelled is OperationCanceledException || cancelled is GenerationResult { FinishReason: FinishReason.Cancelled }, $"the waiting request ended as {cancelled}");
            Assert.Equal(reservedByFirst, host.KvBudget.ReservedBytes);
            Assert.Equal(0, host.KvBudget.Waiting);
        }
        finally
        {
            gate.Open();
        }
        Assert.Equal(FinishReason.Length, (await first.WaitAsync(Bound)).FinishReason);
        Assert.Equal(1, host.KvBudget.Waits);
        AssertAllReturned(host);
    }

    [Fact]
    public async Task A_request_cancelled_between_decode_steps_returns_its_reservation()
    {
        using var cancel = new CancellationTokenSource();
        var hook = new StageHook { OnHandOff = (point, n) => { if (point == HandOff.Sampled && n == 3) cancel.Cancel(); } };
        await using var host = Host(2 * Context * PerPosition, hook);
        var outcome = await Outcome(host.CompleteAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 40, Sampling = new() { Temperature = 0 } }, cancel.Token));
        Assert.True(outcome is OperationCanceledException || outcome is GenerationResult { FinishReason: FinishReason.Cancelled }, $"ended as {outcome}");
        await host.DrainAsync().WaitAsync(Bound);
        AssertAllReturned(host);
    }

    [Fact]
    public async Task A_request_whose_model_call_fails_returns_its_reservation()
    {
        var hook = new StageHook { OnWork = (at, n) => { if (at == HandOff.Stepped && n == 2) throw new InvalidOperationException("injected failure"); } };
        await using var host = Host(2 * Context * PerPosition, hook);
        var outcome = await Outcome(host.CompleteAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 40, Sampling = new() { Temperature = 0 } }));
        Assert.Contains("injected failure", (outcome as Exception)?.Message, StringComparison.Ordinal);
        await host.DrainAsync().WaitAsync(Bound);
        AssertAllReturned(host);
    }

    [Fact]
    public async Task A_request_that_alone_needs_more_than_the_whole_budget_fails_at_once_naming_max_tokens_and_the_numbers()
    {
        await using var host = Host(50 * PerPosition);
        var error = await Assert.ThrowsAsync<InvalidRequestException>(() =>
            host.CompleteAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 100 }).WaitAsync(Bound));
        Assert.Equal("max_tokens", error.ParamName);
        Assert.Contains("max_tokens is 100", error.Message, StringComparison.Ordinal);
        Assert.Contains($"KV budget of {50 * PerPosition} bytes (50 positions)", error.Message, StringComparison.Ordinal);
        Assert.Contains("lower max_tokens to at most 48", error.Message, StringComparison.Ordinal); // "Lily" is BOS + 1 token
        Assert.Equal(0, host.KvBudget.Waits);
        // A request that fits still runs.
        var fits = await host.CompleteAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 48, Sampling = new() { Temperature = 0 } }).WaitAsync(Bound);
        Assert.NotEmpty(fits.CompletionIds);
        AssertAllReturned(host);
    }

    [Fact]
    public async Task Twenty_concurrent_requests_under_a_budget_for_two_all_finish_with_their_solo_tokens_waiting_their_turn_within_the_budget()
    {
        var requests = Enumerable.Range(0, 20).Select(Workloads.Varied).ToArray();
        var solo = new GenerationResult[requests.Length];
        for (int i = 0; i < requests.Length; i++) solo[i] = await Workloads.SoloAsync(requests[i]);
        // Room for about two requests of the set (two of average size, and never less than the largest alone).
        var reservations = requests.Select((r, i) => Math.Min(solo[i].PromptIds.Count + r.MaxTokens, Context) * PerPosition).ToArray();
        long budget = Math.Max(reservations.Max(), 2 * reservations.Sum() / reservations.Length);

        await using var host = Host(budget, maxBatch: 16);
        var together = await Task.WhenAll(requests.Select(r => host.CompleteAsync(r))).WaitAsync(Bound);

        for (int i = 0; i < requests.Length; i++) Workloads.AssertSameRun(solo[i], together[i], $"request {i}");
        Assert.True(host.KvMemory.PeakBytes <= budget, $"peak KV memory {host.KvMemory.PeakBytes} bytes exceeds the budget of {budget}");
        Assert.True(host.KvBudget.PeakReservedBytes <= budget, $"peak reserved {host.KvBudget.PeakReservedBytes} bytes exceeds the budget of {budget}");
        // Most requests found the budget taken and waited: the test explored waiting, not just admission.
        Assert.True(host.KvBudget.Waits >= 10, $"only {host.KvBudget.Waits} of 20 requests waited for KV budget");
        AssertAllReturned(host);
    }

    [Fact]
    public void A_kv_cache_never_grows_past_its_maximum_capacity()
    {
        var config = SharedModel.Instance.Decoder.Config;
        var account = new KvMemoryAccount();
        using var cache = new KvCache(config, account, initialCapacity: 2, maxCapacity: 5);
        var present = new float[config.KvHeads * 3 * config.HeadDim];
        void Append(int count)
        {
            for (int l = 0; l < config.Layers; l++) cache.Append(present, present, l, row: 0, total: 3, start: 0, count, lastLayer: l == config.Layers - 1);
        }
        Append(3);
        Assert.Equal(4, cache.Capacity);
        Append(2);
        Assert.Equal(5, cache.Capacity); // doubling from 4 would give 8; the maximum caps it
        Assert.Equal(5 * KvCache.BytesPerPosition(config), account.Bytes);
        var beyond = Assert.Throws<InvalidOperationException>(() => Append(1));
        Assert.Contains("5 positions its KV cache reserved", beyond.Message, StringComparison.Ordinal);
    }

    private static async Task<object> Outcome(Task<GenerationResult> run)
    {
        try { return await run.WaitAsync(Bound); }
        catch (Exception e) when (e is not TimeoutException) { return e; }
    }
}
