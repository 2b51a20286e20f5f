using System.CommandLine;
using Pipeline.Server;

namespace Pipeline.Cli;

/// <summary>
/// <c>pipeline serve</c>: the OpenAI-compatible HTTP server over one host, until Ctrl+C.
/// The host rejects rather than queues when its admission queue is full, so clients get 429.
/// </summary>
internal static class ServeCommand
{
    public const string ApiKeyVariable = "PIPELINE_API_KEY";

    public static Command Create()
    {
        var urls = new Option<string[]>("--urls") { Description = "addresses to listen on (default: http://127.0.0.1:8080, loopback only)", DefaultValueFactory = _ => ["http://127.0.0.1:8080"], AllowMultipleArgumentsPerToken = true };
        var model = ModelOptions.Model();
        var context = ModelOptions.Context();
        var apiKey = new Option<string?>("--api-key") { Description = $"require 'Authorization: Bearer KEY' on /v1 (default: ${ApiKeyVariable})" };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences per decode step", DefaultValueFactory = _ => 32 };
        var admission = new Option<int>("--queue") { Description = "requests that may wait for admission before 429", DefaultValueFactory = _ => 64 };
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

        var command = new Command("serve", "serve the OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics)")
        {
            urls, model, context, apiKey, maxBatch, admission, threads, cuda, quantize, shapes, resident, attention, spin, graph, serialPrefill, kvBudget,
        };
        command.SetAction((parse, ct) => CliErrors.Guard(async () =>
        {
            var hostOptions = new PipelineHostOptions
            {
                ModelPath = parse.GetValue(model),
                ContextLength = parse.GetValue(context),
                MaxBatch = parse.GetValue(maxBatch),
                AdmissionCapacity = parse.GetValue(admission),
                RejectWhenFull = true,
                IntraOpThreads = parse.GetValue(threads),
                UseCuda = parse.GetValue(cuda),
                Quantize = QuantizeOption.Parse(parse.GetValue(quantize)),
                Shapes = BatchShapesOption.Parse(parse.GetValue(shapes)), ResidentKv = ResidentKvOption.Parse(parse.GetValue(resident)), Attention = AttentionOption.Parse(parse.GetValue(attention)), IntraOpSpinning = SpinOption.Parse(parse.GetValue(spin)), CudaGraph = CudaGraphOption.Parse(parse.GetValue(graph)), SerialPrefill = SerialPrefillOption.Parse(parse.GetValue(serialPrefill)),
                KvBudgetBytes = KvBudgetOption.Parse(parse.GetValue(kvBudget)),
            };
            var serverOptions = new PipelineServerOptions
            {
                Urls = parse.GetValue(urls) is { Length: > 0 } given ? given : ["http://127.0.0.1:8080"],
                ApiKey = parse.GetValue(apiKey) ?? NonEmpty(Environment.GetEnvironmentVariable(ApiKeyVariable)),
            };
            await using var host = PipelineHost.Start(hostOptions);
            await using var server = await PipelineServer.StartAsync(host, serverOptions, ct);
            Console.Error.WriteLine($"serving {host.Model.Name} on {string.Join(", ", server.Addresses)}{(serverOptions.ApiKey is null ? "" : " (API key required)")}; Ctrl+C stops");
            await server.WaitForShutdownAsync(ct);
            return 0;
        }));
        return command;
    }

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
