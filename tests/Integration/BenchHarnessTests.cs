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
        "mode", "concurrency", "tokens_per_second", "generation_tokens_per_second", "requests_per_second", "ttft_p50_ms", "ttft_p99_ms",
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
    public async Task A_bench_that_ignores_end_tokens_generates_exactly_max_tokens_per_request_in_every_mode()
    {
        BenchOptions Options(bool ignoreEos) => new()
        {
            ModelPath = RepoPaths.ModelDir,
            Concurrency = [2],
            Modes = BenchModes.All,
            Workload = new Workload { RequestCount = 4, PromptTokens = 8, MaxTokens = 480, Seed = 7, IgnoreEos = ignoreEos },
        };

        var stopping = await BenchRunner.RunAsync(Options(ignoreEos: false));
        var fixedLength = await BenchRunner.RunAsync(Options(ignoreEos: true));

        // Stories end: without the option some request stops at its end token, with it none does,
        // and the token check still compares every mode's completions.
        Assert.All(stopping.Results, r => Assert.True(r.GeneratedTokens < 4 * 480, $"{r.Mode}: {r.GeneratedTokens} tokens"));
        Assert.All(fixedLength.Results, r => Assert.Equal(4 * 480, r.GeneratedTokens));
        // The decode phase's rate counts the tokens after each request's first over a window
        // inside the run's wall time.
        Assert.All(fixedLength.Results, r => Assert.True(r.GenerationTokensPerSecond >= (r.GeneratedTokens - 4) / r.WallSeconds,
            $"{r.Mode}: {r.GenerationTokensPerSecond} for {r.GeneratedTokens} tokens in {r.WallSeconds} s"));
        Assert.Equal(3 * 4, fixedLength.TokenCheckComparisons);
        Assert.Contains("exactly 480 generated", fixedLength.Workload, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_pipeline_rows_say_where_model_time_went_and_the_other_modes_do_not()
    {
        var options = new BenchOptions
        {
            ModelPath = RepoPaths.ModelDir,
            Concurrency = [1, 4],
            Modes = [BenchMode.Serial, BenchMode.Pipeline],
            Workload = new Workload { RequestCount = 4, PromptTokens = 20, MaxTokens = 10, Seed = 7 },
        };

        var report = await BenchRunner.RunAsync(options);

        Assert.All(report.Results.Where(r => r.Mode == "serial"), r => Assert.Null(r.DecodeSteps));
        foreach (var r in report.Results.Where(r => r.Mode == "pipeline"))
        {
            // Every token after a request's first comes from a decode step, so the steps fed
            // at least (generated - requests) rows; each prompt took at least one prefill call.
            Assert.True(r.DecodeSteps * r.DecodeRowsPerStep >= r.GeneratedTokens - 4 - 0.01, $"{r.DecodeSteps} steps of {r.DecodeRowsPerStep} rows for {r.GeneratedTokens} tokens");
            Assert.InRange(r.DecodeRowsPerStep!.Value, 1, r.Concurrency);
            Assert.True(r.DecodeCallMs > 0 && r.SamplingMs > 0 && r.PrefillCallMs > 0);
            Assert.InRange(r.PrefillCalls!.Value, 1, 4);
            // Model time cannot exceed the wall time of the run it was measured in.
            Assert.True(r.DecodeSteps * (r.DecodeCallMs + r.SamplingMs) <= r.WallSeconds * 1000, "decode time exceeds the run's wall time");
        }
        var table = MarkdownTable.Format(report);
        Assert.Contains("| where the time went |", table, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(JsonReport.Serialize(report));
        var rows = json.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.All(rows.Where(r => r.GetProperty("mode").GetString() == "pipeline"), r => Assert.True(r.TryGetProperty("decode_call_ms", out _)));
        Assert.All(rows.Where(r => r.GetProperty("mode").GetString() == "serial"), r => Assert.False(r.TryGetProperty("decode_call_ms", out _)));
    }

    [Fact]
    public async Task A_bench_with_a_profile_prefix_writes_onnx_runtimes_profile_of_its_model_runs_and_names_the_provider()
    {
        var directory = Directory.CreateTempSubdirectory("pipeline-profile-");
        try
        {
            var options = new BenchOptions
            {
                ModelPath = RepoPaths.ModelDir,
                Concurrency = [2],
                Modes = [BenchMode.Pipeline],
                ProfilePrefix = Path.Combine(directory.FullName, "run"),
                Workload = new Workload { RequestCount = 2, PromptTokens = 8, MaxTokens = 4, Seed = 7 },
            };

            var report = await BenchRunner.RunAsync(options);

            Assert.Contains("provider CPU", report.Model, StringComparison.Ordinal);
            var profile = Assert.Single(directory.GetFiles("run_*.json"));
            using var json = JsonDocument.Parse(File.ReadAllText(profile.FullName));
            var events = json.RootElement.EnumerateArray().ToList();
            Assert.Contains(events, e => e.TryGetProperty("name", out var n) && n.GetString() == "model_run");
            Assert.Contains(events, e => e.TryGetProperty("args", out var a) && a.ValueKind == JsonValueKind.Object
                && a.TryGetProperty("provider", out var p) && p.GetString() == "CPUExecutionProvider");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
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
    public void Under_token_check_report_differing_completions_are_counted_and_the_first_described_instead_of_aborting()
    {
        RequestTrace Trace(params int[] ids)
        {
            var t = new RequestTrace(0);
            foreach (var id in ids) t.TokenArrived(id);
            return t;
        }

        var (compared, differing, first) = TokenAgreement.Compare(
            [("pipeline@1", [Trace(5, 6), Trace(1, 2)]), ("pipeline@16", [Trace(5, 7), Trace(1, 2)]), ("pipeline@64", [Trace(5, 6), Trace(1)])],
            abort: false);

        Assert.Equal(6, compared);
        Assert.Equal(2, differing);
        Assert.Contains("request 0 under pipeline@16", first);
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
