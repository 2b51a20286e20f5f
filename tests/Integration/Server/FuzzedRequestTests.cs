using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Pipeline.Integration.Server.Fuzz;
using Xunit.Abstractions;

namespace Pipeline.Integration.Server;

/// <summary>
/// FsCheck-generated requests, well formed and broken in every way a client can break them,
/// against the real server on loopback: never a 5xx, every 4xx in OpenAI's error shape, never a
/// hang, no KV memory left behind by any request, and the server still serving afterwards. The
/// test counts what it explored and fails if that is too little to be believed.
/// </summary>
public sealed class FuzzedRequestTests(ServerFixture fixture, ITestOutputHelper output) : IClassFixture<ServerFixture>
{
    private const int Cases = 400;

    [Fact]
    public async Task Any_generated_request_gets_a_well_formed_answer_below_500_within_the_deadline_and_frees_its_kv_memory()
    {
        var explored = new Exploration();
        using var client = new FuzzClient(fixture.BaseAddress, ServerFixture.ApiKey);
        var property = Prop.ForAll(Arb.From(RequestGenerators.Request(fixture.Host.Model.Name)), request =>
        {
            var outcome = client.SendAsync(request).GetAwaiter().GetResult();
            explored.Record(request, outcome);
            if (outcome.Violation is { } violation) return false.Label(violation);
            // Every request, answered or refused, must have given back its KV cache.
            var until = DateTime.UtcNow.AddSeconds(10);
            while (fixture.Host.KvMemory.Bytes != 0 || fixture.Host.Counters.ActiveSequences != 0)
            {
                if (DateTime.UtcNow > until)
                    return false.Label($"KV memory not returned: {fixture.Host.KvMemory.Bytes} bytes in {fixture.Host.KvMemory.LiveCaches} caches, {fixture.Host.Counters.ActiveSequences} active");
                Thread.Sleep(5);
            }
            return true.ToProperty();
        });
        var clock = Stopwatch.StartNew();
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Cases).WithQuietOnSuccess(true), property);
        output.WriteLine($"{Cases} requests in {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(explored.ToString());

        // The server still serves, and holds nothing.
        using (var health = await fixture.Http.GetAsync(new Uri("/health", UriKind.Relative))) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using (var normal = await fixture.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative),
                   new StringContent("""{"prompt":"Lily","max_tokens":4}""", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.OK, normal.StatusCode);
        await Eventually.HoldsAsync(() => fixture.Host.KvMemory.Bytes == 0, () => $"{fixture.Host.KvMemory.Bytes} KV bytes held");
        Assert.Contains("\npipeline_kv_cache_bytes 0\n", await fixture.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative)), StringComparison.Ordinal);

        // What it explored: every generator, many field × value kinds, the answers a server gives.
        Assert.True(explored.Categories.Count >= 10, $"too few categories: {explored}");
        Assert.True(explored.Categories.Values.All(n => n >= 3), $"a category was barely generated: {explored}");
        Assert.True(explored.FieldKinds.Count >= 80, $"too few distinct field × value kinds: {explored}");
        Assert.True(explored.Tags.Count >= 150, $"too few distinct tags: {explored}");
        foreach (int status in new[] { 200, 400, 401, 404, 405, 413 })
            Assert.True(explored.Statuses.ContainsKey(status), $"no {status} seen: {explored}");
        Assert.True(explored.Statuses[200] >= Cases / 5, $"too few requests got through to generation: {explored}");
        Assert.True(explored.Streams >= 20, $"too few streams read to the end: {explored}");
    }

    /// <summary>Counts what the generated requests covered and how the server answered.</summary>
    private sealed class Exploration
    {
        public ConcurrentDictionary<string, int> Categories { get; } = new();
        public ConcurrentDictionary<string, int> Tags { get; } = new();
        public ConcurrentDictionary<int, int> Statuses { get; } = new();
        public int Streams { get; private set; }

        /// <summary>The tags that name a known field given a value of some kind, e.g. "temperature=float-edge".</summary>
        public IReadOnlyCollection<string> FieldKinds => Tags.Keys.Where(t => t.Contains('=', StringComparison.Ordinal) && !t.StartsWith("body=", StringComparison.Ordinal)).ToArray();

        public void Record(FuzzRequest request, FuzzOutcome outcome)
        {
            Categories.AddOrUpdate(request.Category, 1, (_, n) => n + 1);
            foreach (var tag in request.Tags) Tags.AddOrUpdate(tag, 1, (_, n) => n + 1);
            Statuses.AddOrUpdate(outcome.Status, 1, (_, n) => n + 1);
            if (outcome.Streamed && outcome.Violation is null) Streams++;
        }

        public override string ToString() =>
            $"statuses {{{string.Join(", ", Statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}"))}}}; streams read to the end {Streams}; " +
            $"categories {{{string.Join(", ", Categories.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}: {c.Value}"))}}}; " +
            $"{Tags.Count} distinct tags, {FieldKinds.Count} distinct field × value kinds: {string.Join(" ", Tags.Keys.Order(StringComparer.Ordinal))}";
    }
}
