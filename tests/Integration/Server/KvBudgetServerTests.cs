using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Pipeline.Actors.Scheduling;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration.Server;

/// <summary>
/// A server whose host has a KV budget for one request at a time, one tokenizer and one place in
/// its admission queue, steered by a <see cref="GateHook"/>.
/// </summary>
public sealed class KvBudgetServerFixture : ServerFixture
{
    /// <summary>Positions the budget holds: one request of "Lily" (2 tokens) and 60 more, not two.</summary>
    public const int BudgetPositions = 100;

    internal GateHook Hook { get; } = new();

    public long Budget => BudgetPositions * KvCache.BytesPerPosition(Model.Decoder.Config);

    protected override string? ServerApiKey => null;

    private protected override PipelineHostOptions HostOptions => new()
    {
        RejectWhenFull = true, AdmissionCapacity = 1, TokenizeParallelism = 1, Hook = Hook, KvBudgetBytes = Budget,
    };
}

/// <summary>Beyond the KV budget requests wait; then the queue fills and the server answers 429 with Retry-After; /metrics shows budget, reserved and used.</summary>
public sealed class KvBudgetServerTests(KvBudgetServerFixture fixture) : IClassFixture<KvBudgetServerFixture>
{
    [Fact]
    public async Task Beyond_the_kv_budget_a_request_waits_the_next_queues_and_one_more_is_429_with_retry_after_and_the_admitted_ones_finish()
    {
        using var client = new HttpClient { BaseAddress = fixture.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var body = new { prompt = "Lily", max_tokens = 60, temperature = 0 };
        long perPosition = KvCache.BytesPerPosition(fixture.Model.Decoder.Config);
        // Let the first request decode a little, then hold it: it keeps its 62 reserved positions.
        fixture.Hook.Close(HandOff.Stepped, passFirst: 2);
        Task<HttpResponseMessage>? first = null, second = null, third = null;
        try
        {
            first = client.PostAsync("/v1/completions", Json(body));
            await fixture.Hook.Held.WaitAsync(TimeSpan.FromSeconds(20));
            second = client.PostAsync("/v1/completions", Json(body));
            await Eventually.HoldsAsync(() => fixture.Host.KvBudget.Waiting == 1, () => $"{fixture.Host.KvBudget.Waiting} waiting for KV budget");
            third = client.PostAsync("/v1/completions", Json(body));
            await Eventually.HoldsAsync(() => fixture.Host.QueueDepth == 1, () => $"queue depth {fixture.Host.QueueDepth}");

            using var rejected = await client.PostAsync("/v1/completions", Json(body));
            Assert.Equal(HttpStatusCode.TooManyRequests, rejected.StatusCode);
            Assert.Equal("1", rejected.Headers.GetValues("Retry-After").Single());
            var error = JsonDocument.Parse(await rejected.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());

            var metrics = await client.GetStringAsync("/metrics");
            Assert.Equal(fixture.Budget, Metric(metrics, "pipeline_kv_budget_bytes"));
            Assert.Equal(62 * perPosition, Metric(metrics, "pipeline_kv_reserved_bytes"));
            Assert.InRange(Metric(metrics, "pipeline_kv_cache_bytes"), 1, 62 * perPosition);
            Assert.Equal(1, Metric(metrics, "pipeline_kv_budget_waiting"));
        }
        finally
        {
            fixture.Hook.Open();
        }
        foreach (var admitted in new[] { first, second!, third! })
        {
            using var response = await admitted;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await Eventually.HoldsAsync(() => fixture.Host.KvBudget.ReservedBytes == 0 && fixture.Host.KvMemory.Bytes == 0,
            () => $"reserved {fixture.Host.KvBudget.ReservedBytes}, used {fixture.Host.KvMemory.Bytes}");
        var after = await client.GetStringAsync("/metrics");
        Assert.Equal(0, Metric(after, "pipeline_kv_reserved_bytes"));
        Assert.True(Metric(after, "pipeline_kv_budget_waits_total") >= 2, "the second and third requests waited for KV budget");
        // Where the model time went: three prompts were prefilled and their tokens decoded and sampled.
        Assert.True(Metric(after, "pipeline_prefill_calls_total") >= 3, "three prompts were prefilled");
        foreach (var seconds in new[] { "pipeline_decode_call_seconds_total", "pipeline_sampling_seconds_total", "pipeline_prefill_call_seconds_total" })
            Assert.True(SecondsMetric(after, seconds) > 0, $"{seconds} is not positive");
    }

    private static double SecondsMetric(string metrics, string name)
    {
        var match = Regex.Match(metrics, $"^{name} ([0-9.eE+-]+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"/metrics has no {name}");
        return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_request_that_alone_needs_more_than_the_whole_kv_budget_is_400_naming_max_tokens()
    {
        using var client = new HttpClient { BaseAddress = fixture.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        using var response = await client.PostAsync("/v1/completions", Json(new { prompt = "Lily", max_tokens = 200 }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("max_tokens", error.GetProperty("param").GetString());
        Assert.Contains($"KV budget of {fixture.Budget} bytes ({KvBudgetServerFixture.BudgetPositions} positions)", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    private static long Metric(string metrics, string name)
    {
        var match = Regex.Match(metrics, $"^{name} (-?[0-9]+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"/metrics has no {name}");
        return long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}
