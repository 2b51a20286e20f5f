using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Inference.Sampling;

namespace Pipeline.Cli;

/// <summary>
/// JSON lines in, JSON lines out, in input order: each request runs concurrently through one
/// host; a bad line gets an error line with its id and the others still run.
/// </summary>
internal static class BatchMode
{
    /// <summary>The command line's sampling when a request names none: greedy.</summary>
    public static readonly SamplingOptions DefaultSampling = SamplingOptions.Greedy;

    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task<int> RunAsync(PipelineHost host, TextReader input, TextWriter output, int concurrency, CancellationToken ct)
    {
        var lines = new List<string>();
        while (await input.ReadLineAsync(ct) is { } line)
            if (!string.IsNullOrWhiteSpace(line)) lines.Add(line);
        using var gate = new SemaphoreSlim(concurrency > 0 ? concurrency : Math.Max(1, lines.Count));
        var tasks = lines.Select(async (line, index) =>
        {
            await gate.WaitAsync(ct);
            try { return await RunOneAsync(host, line, index, ct); }
            finally { gate.Release(); }
        }).ToArray();
        int failed = 0;
        foreach (var task in tasks)
        {
            var (json, ok) = await task;
            if (!ok) failed++;
            await output.WriteLineAsync(json.ToJsonString(Json));
            await output.FlushAsync(ct);
        }
        return failed == 0 ? 0 : 3;
    }

    private static async Task<(JsonNode Json, bool Ok)> RunOneAsync(PipelineHost host, string line, int index, CancellationToken ct)
    {
        JsonNode? id = JsonValue.Create(index);
        try
        {
            var node = JsonNode.Parse(line) as JsonObject ?? throw new FormatException("each line must be a JSON object");
            if (node["id"] is { } given) id = given.DeepClone();
            var request = new GenerationRequest
            {
                // "prompt_ids" are used as given (nothing added); otherwise "prompt" is encoded with the tokenizer's specials.
                Prompt = node["prompt_ids"] is null ? node["prompt"]?.GetValue<string>() ?? throw new FormatException("missing \"prompt\" (or \"prompt_ids\")") : null,
                PromptIds = node["prompt_ids"] is JsonArray ids ? ids.Select(i => i?.GetValue<int>() ?? throw new FormatException("\"prompt_ids\" must hold integers")).ToArray()
                    : node["prompt_ids"] is null ? null : throw new FormatException("\"prompt_ids\" must be an array of integers"),
                MaxTokens = node["max_tokens"]?.GetValue<int>() ?? GenerationRequest.DefaultMaxTokens,
                Sampling = new SamplingOptions
                {
                    Temperature = node["temperature"]?.GetValue<float>() ?? DefaultSampling.Temperature,
                    TopP = node["top_p"]?.GetValue<float>() ?? DefaultSampling.TopP,
                    TopK = node["top_k"]?.GetValue<int>() ?? DefaultSampling.TopK,
                    MinP = node["min_p"]?.GetValue<float>() ?? DefaultSampling.MinP,
                    RepetitionPenalty = node["repetition_penalty"]?.GetValue<float>() ?? DefaultSampling.RepetitionPenalty,
                },
                Seed = node["seed"]?.GetValue<ulong>(),
                Stop = node["stop"] switch
                {
                    null => [],
                    JsonArray a => a.Select(s => s!.GetValue<string>()).ToArray(),
                    var s => [s.GetValue<string>()],
                },
            };
            var result = await host.CompleteAsync(request, ct);
            return (ToJson(id, result), true);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (new JsonObject { ["id"] = id, ["error"] = CliErrors.Describe(e) }, false);
        }
    }

    public static JsonObject ToJson(JsonNode? id, GenerationResult r)
    {
        var o = new JsonObject();
        if (id is not null) o["id"] = id;
        o["prompt_ids"] = new JsonArray(r.PromptIds.Select(i => (JsonNode)i).ToArray());
        o["completion_ids"] = new JsonArray(r.CompletionIds.Select(i => (JsonNode)i).ToArray());
        o["text"] = r.Text;
        o["finish_reason"] = r.FinishReason.ToString().ToLowerInvariant();
        o["seed"] = r.Seed;
        o["timings_ms"] = new JsonObject
        {
            ["queued"] = Math.Round(r.Timings.Queued.TotalMilliseconds, 3),
            ["first_token"] = r.Timings.TimeToFirstToken is { } t ? Math.Round(t.TotalMilliseconds, 3) : null,
            ["total"] = Math.Round(r.Timings.Total.TotalMilliseconds, 3),
        };
        return o;
    }
}
