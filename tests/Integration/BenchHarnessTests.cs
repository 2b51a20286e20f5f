using System.Text.Json;
using Pipeline.Benchmarks;

namespace Pipeline.Integration;

/// <summary>
/// The benchmark harness on stories260K with a tiny workload: the token-equality check runs and
/// passes for every mode and concurrency, and the JSON carries the documented fields. No timing
/// is asserted: speeds depend on the machine.
/// </summary>
public sealed class BenchHarnessTests
{
    private static readonly string[] ResultFields =
    [
        "mode", "concurrency", "tokens_per_second", "requests_per_second", "ttft_p50_ms", "ttft_p99_ms",
        "itl_p50_ms", "itl_p99_ms", "peak_working_set_mb", "peak_kv_mb",
    ];

    [Fact]
    public async Task Run_tiny_workload_all_modes_tokens_match_and_json_has_fields()
    {
        var options = new BenchOptions
        {
            ModelPath = RepoPaths.ModelDir,
            Concurrency = [1, 2],
            Modes = BenchModes.All,
            Workload = new Workload { RequestCount = 4, PromptTokens = 70, MaxTokens = 8, Seed = 7 },
        };

        var report = await BenchRunner.RunAsync(options);

        Assert.Equal(3 * 2 * 4, report.TokenCheckComparisons);
        Assert.Equal(6, report.Results.Count);
        Assert.True(report.Results.Sum(r => r.GeneratedTokens) > 0);
        using var json = JsonDocument.Parse(JsonReport.Serialize(report));
        Assert.Equal(JsonValueKind.String, json.RootElement.GetProperty("machine").ValueKind);
        Assert.Equal(JsonValueKind.String, json.RootElement.GetProperty("model").ValueKind);
        var results = json.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["serial", "serial", "global-lock", "global-lock", "pipeline", "pipeline"], results.Select(r => r.GetProperty("mode").GetString()));
        foreach (var row in results)
            foreach (var field in ResultFields)
                Assert.True(row.TryGetProperty(field, out _), $"result row lacks '{field}'");
    }

    [Fact]
    public void Verify_one_token_differs_throws_naming_the_request()
    {
        var reference = new RequestTrace(0);
        reference.TokenArrived(5);
        reference.TokenArrived(6);
        var other = new RequestTrace(0);
        other.TokenArrived(5);
        other.TokenArrived(7);

        var e = Assert.Throws<TokenMismatchException>(() => TokenAgreement.Verify([("serial@1", [reference]), ("pipeline@2", [other])]));

        Assert.Contains("request 0", e.Message);
        Assert.Contains("index 1", e.Message);
    }

    [Fact]
    public void WriteTokenizer_synthetic_vocabulary_loads_with_that_size()
    {
        var path = Path.Combine(Path.GetTempPath(), $"synthetic-tok-{Guid.NewGuid():N}.bin");
        try
        {
            using (var stream = File.Create(path)) SyntheticModelWriter.WriteTokenizer(1000, stream);
            Assert.Equal(1000, Inference.Tokenization.Tokenizer.Load(path).VocabSize);
        }
        finally { File.Delete(path); }
    }
}
