using System.CommandLine;
using System.Text.Json;
using Pipeline.Inference.Sampling;

namespace Pipeline.Cli;

/// <summary>
/// <c>pipeline generate --prompt TEXT</c> prints one continuation; <c>pipeline generate -</c>
/// reads JSON lines from stdin and runs them concurrently through one host.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var input = new Argument<string?>("input") { Description = "'-' to read JSON-lines requests from stdin", Arity = ArgumentArity.ZeroOrOne };
        var prompt = new Option<string?>("--prompt", "-p") { Description = "text to continue" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens to generate at most", DefaultValueFactory = _ => GenerationRequest.DefaultMaxTokens };
        // The command line is greedy unless told otherwise; every other option defaults as the library does.
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => BatchMode.DefaultSampling.Temperature };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => SamplingOptions.Default.TopP };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => SamplingOptions.Default.TopK };
        var minP = new Option<float>("--min-p") { DefaultValueFactory = _ => SamplingOptions.Default.MinP };
        var repetition = new Option<float>("--repetition-penalty") { DefaultValueFactory = _ => SamplingOptions.Default.RepetitionPenalty };
        var seed = new Option<ulong?>("--seed") { Description = "random seed; picked and reported when absent" };
        var stop = new Option<string[]>("--stop") { Description = "stop string (repeatable)", AllowMultipleArgumentsPerToken = false };
        var model = ModelOptions.Model();
        var context = ModelOptions.Context();
        var format = new Option<string>("--format") { Description = "text or json", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");
        var concurrency = new Option<int>("--concurrency") { Description = "batch mode: requests in flight at once (default: all)", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0 = by model size: 2 below 256 MB of weights, every core above)", DefaultValueFactory = _ => 0 };
        var cuda = new Option<bool>("--cuda") { Description = "run on the CUDA execution provider when available" };
        var quantize = QuantizeOption.Create();
        var shapes = BatchShapesOption.Create();
        var resident = ResidentKvOption.Create();
        var attention = AttentionOption.Create();
        var spin = SpinOption.Create();
        var graph = CudaGraphOption.Create();
        var serialPrefill = SerialPrefillOption.Create();
        var kvBudget = KvBudgetOption.Create();

        var command = new Command("generate", "continue a prompt with the model")
        {
            input, prompt, maxTokens, temperature, topP, topK, minP, repetition, seed, stop, model, context, format, concurrency, threads, cuda, quantize, shapes, resident, attention, spin, graph, serialPrefill, kvBudget,
        };
        command.SetAction((parse, ct) => CliErrors.Guard(async () =>
        {
            var options = new PipelineHostOptions
            {
                ModelPath = parse.GetValue(model),
                ContextLength = parse.GetValue(context),
                IntraOpThreads = parse.GetValue(threads),
                UseCuda = parse.GetValue(cuda),
                Quantize = QuantizeOption.Parse(parse.GetValue(quantize)),
                Shapes = BatchShapesOption.Parse(parse.GetValue(shapes)), ResidentKv = ResidentKvOption.Parse(parse.GetValue(resident)), Attention = AttentionOption.Parse(parse.GetValue(attention)), IntraOpSpinning = SpinOption.Parse(parse.GetValue(spin)), CudaGraph = CudaGraphOption.Parse(parse.GetValue(graph)), SerialPrefill = SerialPrefillOption.Parse(parse.GetValue(serialPrefill)),
                KvBudgetBytes = KvBudgetOption.Parse(parse.GetValue(kvBudget)),
            };
            if (parse.GetValue(input) is { } source)
            {
                if (source != "-") throw new ArgumentException($"unknown input '{source}'; use '-' to read JSON lines from stdin");
                await using var batchHost = PipelineHost.Start(options);
                ReportProvider(batchHost);
                return await BatchMode.RunAsync(batchHost, Console.In, Console.Out, parse.GetValue(concurrency), ct);
            }
            var text = parse.GetValue(prompt) ?? throw new ArgumentException("give --prompt TEXT, or '-' to read JSON lines from stdin");
            var request = new GenerationRequest
            {
                Prompt = text,
                MaxTokens = parse.GetValue(maxTokens),
                Sampling = new SamplingOptions
                {
                    Temperature = parse.GetValue(temperature),
                    TopP = parse.GetValue(topP),
                    TopK = parse.GetValue(topK),
                    MinP = parse.GetValue(minP),
                    RepetitionPenalty = parse.GetValue(repetition),
                },
                Seed = parse.GetValue(seed),
                Stop = parse.GetValue(stop) ?? [],
            };
            await using var host = PipelineHost.Start(options);
            ReportProvider(host);
            if (parse.GetValue(format) == "json")
            {
                var result = await host.CompleteAsync(request, ct);
                Console.WriteLine(JsonSerializer.Serialize(BatchMode.ToJson(null, result), BatchMode.Json));
                return 0;
            }
            await foreach (var e in host.GenerateAsync(request, ct))
            {
                Console.Write(e.Text);
                Console.Out.Flush();
            }
            Console.WriteLine();
            return 0;
        }));
        return command;
    }

    private static void ReportProvider(PipelineHost host)
    {
        var decoder = host.Model.Decoder;
        if (decoder.ProviderFallbackReason is { } reason) Console.Error.WriteLine($"note: {reason}");
        else if (decoder.ExecutionProvider != "CPU") Console.Error.WriteLine($"note: running on {decoder.ExecutionProvider}");
    }
}
