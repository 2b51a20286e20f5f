using System.CommandLine;
using System.Globalization;
using Pipeline.Benchmarks;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Cli;

/// <summary>
/// <c>pipeline bench</c>: serial, global-lock and pipeline modes over one model and one workload,
/// swept over concurrency; a Markdown table on stdout, progress on stderr, JSON and a PNG chart.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "a small sweep (concurrency 1,4,16; 16 requests; 16 prompt and 32 generated tokens) that ends within minutes" };
        var model = ModelOptions.Model();
        var context = ModelOptions.Context();
        var synthetic = new Option<string?>("--synthetic") { Description = "a synthetic model with random weights: 15m, 110m, or dim=..,layers=..,heads=..,kv_heads=..,hidden=..,vocab=..,seq_len=.." };
        var concurrency = new Option<string?>("--concurrency") { Description = "comma-separated concurrency levels (default 1,2,4,8,16,32,64)" };
        var modes = new Option<string>("--modes") { Description = "comma-separated: serial, global-lock, pipeline", DefaultValueFactory = _ => "serial,global-lock,pipeline" };
        var requests = new Option<int?>("--requests") { Description = "requests per run (default 64; quick 16)" };
        var promptTokens = new Option<int?>("--prompt-tokens") { Description = "prompt length in tokens, BOS included (default 32; quick 16)" };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "tokens to generate per request at most (default 64; quick 32)" };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "every request generates exactly --max-tokens: end tokens do not end it (the fixed-length load of llama.cpp's llama-batched-bench, for comparing with it)" };
        var arrival = new Option<string>("--arrival") { Description = "all, or poisson:RATE (requests per second)", DefaultValueFactory = _ => "all" };
        var seed = new Option<ulong>("--seed") { Description = "seeds prompts, arrivals, sampling and synthetic weights", DefaultValueFactory = _ => 42UL };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0 = by model size, as serve and generate: 2 below 256 MB of weights, every core above)", DefaultValueFactory = _ => 0 };
        var json = new Option<string>("--json") { Description = "where to write the JSON results", DefaultValueFactory = _ => "bench-results.json" };
        var quantize = QuantizeOption.Create();
        var cuda = new Option<bool>("--cuda") { Description = "run on the CUDA execution provider (the report names the provider and the GPU; tokens are checked equal across runs first)" };
        var shapes = BatchShapesOption.Create();
        var resident = ResidentKvOption.Create();
        var attention = AttentionOption.Create();
        var spin = SpinOption.Create();
        var graph = CudaGraphOption.Create();
        var serialPrefill = SerialPrefillOption.Create();
        var tokenCheck = new Option<string>("--token-check")
        {
            Description = "abort (the default: tokens that differ between runs abort the bench before any speed is reported) or report "
                + "(count the differing completions and report speeds anyway: for measuring with the invariance switched off, --batch-shapes exact)",
            DefaultValueFactory = _ => "abort",
        };
        var profile = new Option<string?>("--profile") { Description = "write ONNX Runtime's profile (each node's time and provider, Chrome-trace JSON) to a file starting with this prefix" };
        var kvBudget = KvBudgetOption.Create();
        var chart = new Option<string?>("--chart") { Description = "where to write a PNG chart of the results (none unless given)" };

        var stall = new Option<int?>("--stall") { Description = "instead of the sweep: 8 sequences decode while a prompt of this many tokens arrives; report their inter-token gaps" };
        var rounds = new Option<int?>("--rounds") { Description = "instead of the sweep: one pipeline host serves the same workload this many times (at the first --concurrency level, default 16) and the process's RSS, peak RSS and managed heap are reported after each round: does memory plateau?" };
        var settle = new Option<int>("--settle-ms") { Description = "with --rounds: idle time after each round before memory is read", DefaultValueFactory = _ => 1000 };

        var command = new Command("bench", "measure throughput and latency of serial, global-lock and pipeline serving")
        {
            quick, model, context, synthetic, concurrency, modes, requests, promptTokens, maxTokens, ignoreEos, arrival, seed, threads, quantize, cuda, shapes, resident, attention, spin, graph, serialPrefill, tokenCheck, kvBudget, profile, json, chart, stall, rounds, settle,
        };
        command.SetAction((parse, ct) => CliErrors.Guard(async () =>
        {
            bool isQuick = parse.GetValue(quick);
            ulong seedValue = parse.GetValue(seed);
            long? budgetBytes = KvBudgetOption.Parse(parse.GetValue(kvBudget)); // a bad value fails before any model work
            var (directory, description) = ResolveModel(parse.GetValue(model), parse.GetValue(synthetic), seedValue);
            if (parse.GetValue(stall) is { } longPrompt)
            {
                using var loaded = LoadedModel.Load(directory, new RunnerOptions
                {
                    IntraOpThreads = parse.GetValue(threads), MaxContext = parse.GetValue(context), Quantize = QuantizeOption.Parse(parse.GetValue(quantize)),
                    UseCuda = parse.GetValue(cuda), Shapes = BatchShapesOption.Parse(parse.GetValue(shapes)), ResidentKv = ResidentKvOption.Parse(parse.GetValue(resident)), Attention = AttentionOption.Parse(parse.GetValue(attention)), IntraOpSpinning = SpinOption.Parse(parse.GetValue(spin)), CudaGraph = CudaGraphOption.Parse(parse.GetValue(graph)), SerialPrefill = SerialPrefillOption.Parse(parse.GetValue(serialPrefill)),
                });
                var r = await StallProbe.RunAsync(loaded, decoding: 8, longPrompt, ct);
                Console.WriteLine($"| {r.Decoding} decoding, prompt of {r.LongPromptTokens} tokens arrives | ITL p50 ms | ITL max ms |");
                Console.WriteLine("|---|---:|---:|");
                Console.WriteLine($"| before it arrives | {r.BaselineItlP50Ms:F3} | {r.BaselineItlMaxMs:F3} |");
                Console.WriteLine($"| while it is prefilled | {r.DuringPrefillItlP50Ms:F3} | {r.DuringPrefillItlMaxMs:F3} |");
                Console.WriteLine($"long prompt's time to first token: {r.LongPromptTimeToFirstTokenMs:F1} ms; longest gap between decode steps: {r.LongestDecodeGap.TotalMilliseconds:F3} ms");
                return 0;
            }
            if (parse.GetValue(rounds) is { } roundCount)
            {
                using var loaded = LoadedModel.Load(directory, new RunnerOptions { IntraOpThreads = parse.GetValue(threads), MaxContext = parse.GetValue(context), Quantize = QuantizeOption.Parse(parse.GetValue(quantize)) });
                var workload = new Workload
                {
                    RequestCount = parse.GetValue(requests) ?? 64,
                    PromptTokens = parse.GetValue(promptTokens) ?? 32,
                    MaxTokens = parse.GetValue(maxTokens) ?? 64,
                    IgnoreEos = parse.GetValue(ignoreEos),
                    Arrival = ArrivalPattern.Parse(parse.GetValue(arrival)!),
                    Seed = seedValue,
                };
                int level = parse.GetValue(concurrency) is { } given ? ParseLevels(given)[0] : 16;
                var plateau = await PlateauProbe.RunAsync(loaded, workload, level, roundCount, TimeSpan.FromMilliseconds(parse.GetValue(settle)),
                    new Progress<string>(Console.Error.WriteLine), ct);
                Console.WriteLine(PlateauProbe.Format(plateau));
                return plateau.TokensIdentical ? 0 : 1;
            }
            var options = new BenchOptions
            {
                ModelPath = directory,
                ContextLength = parse.GetValue(context),
                ModelDescription = description,
                Concurrency = parse.GetValue(concurrency) is { } levels ? ParseLevels(levels) : isQuick ? [1, 4, 16] : [1, 2, 4, 8, 16, 32, 64],
                Modes = BenchModes.Parse(parse.GetValue(modes)!),
                IntraOpThreads = parse.GetValue(threads),
                Quantize = QuantizeOption.Parse(parse.GetValue(quantize)),
                UseCuda = parse.GetValue(cuda),
                Shapes = BatchShapesOption.Parse(parse.GetValue(shapes)), ResidentKv = ResidentKvOption.Parse(parse.GetValue(resident)), Attention = AttentionOption.Parse(parse.GetValue(attention)), IntraOpSpinning = SpinOption.Parse(parse.GetValue(spin)), CudaGraph = CudaGraphOption.Parse(parse.GetValue(graph)), SerialPrefill = SerialPrefillOption.Parse(parse.GetValue(serialPrefill)),
                ReportTokenMismatches = parse.GetValue(tokenCheck)?.Trim().ToLowerInvariant() switch
                {
                    "abort" => false,
                    "report" => true,
                    var other => throw new ArgumentException($"--token-check: '{other}' is not abort or report"),
                },
                ProfilePrefix = parse.GetValue(profile),
                KvBudgetBytes = budgetBytes,
                Workload = new Workload
                {
                    RequestCount = parse.GetValue(requests) ?? (isQuick ? 16 : 64),
                    PromptTokens = parse.GetValue(promptTokens) ?? (isQuick ? 16 : 32),
                    MaxTokens = parse.GetValue(maxTokens) ?? (isQuick ? 32 : 64),
                    IgnoreEos = parse.GetValue(ignoreEos),
                    Arrival = ArrivalPattern.Parse(parse.GetValue(arrival)!),
                    Seed = seedValue,
                },
            };
            var report = await BenchRunner.RunAsync(options, new StderrProgress(), ct);
            Console.Error.WriteLine();
            Console.WriteLine(MarkdownTable.Format(report));
            var jsonPath = parse.GetValue(json)!;
            JsonReport.Write(report, jsonPath);
            if (parse.GetValue(chart) is { } chartPath)
            {
                ThroughputChart.Write(report, chartPath);
                Console.Error.WriteLine($"wrote {jsonPath} and {chartPath}");
            }
            else
            {
                Console.Error.WriteLine($"wrote {jsonPath}");
            }
            return 0;
        }));
        return command;
    }

    private static (string Directory, string? Description) ResolveModel(string? model, string? synthetic, ulong seed)
    {
        if (model is not null && synthetic is not null) throw new ArgumentException("give --model or --synthetic, not both");
        if (synthetic is null) return (model ?? LoadedModel.EmbeddedModelDirectory, null);
        var shape = SyntheticShape.Parse(synthetic);
        var root = Path.Combine(Path.GetDirectoryName(OnnxModelCache.DefaultDirectory)!, "synthetic");
        Console.Error.WriteLine($"synthetic model {synthetic}: {BenchRunner.Describe(shape)} (writing and converting on first use)");
        return (SyntheticModelWriter.GetOrWrite(shape, seed, root), $"synthetic {synthetic}, random weights seed {seed} ({BenchRunner.Describe(shape)})");
    }

    private static int[] ParseLevels(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v
                : throw new ArgumentException($"concurrency '{s}' is not a positive integer"))
            .ToArray();

    /// <summary>One status line on stderr, rewritten in place on a terminal, a line per run otherwise.</summary>
    private sealed class StderrProgress : IProgress<BenchProgress>
    {
        private readonly Lock _gate = new();
        private int _lastRun;

        public void Report(BenchProgress p)
        {
            lock (_gate)
            {
                var line = $"[{p.RunNumber}/{p.RunCount}] {p.Mode,-11} concurrency {p.Concurrency,3}: {p.RequestsDone}/{p.RequestCount} requests";
                if (!Console.IsErrorRedirected) Console.Error.Write($"\r{line}   ");
                else if (p.RunNumber != _lastRun) Console.Error.WriteLine(line);
                _lastRun = p.RunNumber;
            }
        }
    }
}
