using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Inference.Sampling;
using Pipeline.Server.Http;
using Pipeline.Server.Metrics;

namespace Pipeline.Server.OpenAi;

/// <summary>
/// Serves /v1/completions and /v1/chat/completions: parses the request, starts its n samples on
/// the host, and answers with one JSON object or a stream of server-sent chunks.
/// </summary>
internal sealed class CompletionEndpoint(PipelineHost host, ServerMetrics metrics, PipelineServerOptions options, ILogger<CompletionEndpoint> log)
{
    private static readonly IResponseShape Text = new TextCompletionShape();
    private static readonly IResponseShape Chat = new ChatCompletionShape();

    public Task CompletionsAsync(HttpContext context) => HandleAsync(context, Text, ApiRequestParser.ParseCompletion);

    public Task ChatCompletionsAsync(HttpContext context) => HandleAsync(context, Chat, (body, max) => ApiRequestParser.ParseChat(body, max, host.CreateChatRequest));

    /// <summary>
    /// Design: every sample is admitted and must yield its first token (or its error) before the
    /// status line is sent, so that invalid options and a full queue still get a 400 or 429 on a
    /// streaming request. All samples share one cancellation source linked to RequestAborted: a
    /// client that disconnects, or a sample that fails to start, cancels every sample and frees
    /// its KV cache.
    /// </summary>
    private async Task HandleAsync(HttpContext context, IResponseShape shape, Func<JsonElement, int, ApiRequest> parse)
    {
        long arrived = Stopwatch.GetTimestamp();
        using var body = await ReadJsonAsync(context);
        var request = ApiLimits.Check(body.RootElement, parse(body.RootElement, options.MaxSamplesPerRequest));
        if (request.Model is { } model && model != host.Model.Name) throw ApiException.ModelNotFound(model);
        ulong seed = request.Seed ?? SeedSource.NewSeed();

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        try
        {
            var samples = await StartSamplesAsync(request, seed, cancel.Token);
            foreach (var sample in samples) await sample.WaitForFirstAsync(cancel.Token);

            var header = new ResponseHeader(shape, $"{shape.IdPrefix}{Guid.NewGuid():N}", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), host.Model.Name, seed);
            if (request.Stream) await StreamAsync(context, header, request, samples, arrived, cancel.Token);
            else await RespondAsync(context, header, request, samples, arrived, cancel.Token);
        }
        catch
        {
            cancel.Cancel();
            throw;
        }
    }

    /// <summary>
    /// Starts every choice. With n &gt; 1 a prompt is tokenized once: its first sample goes through
    /// the tokenizer, the others continue the ids that sample's prompt became (the same ids, so
    /// the same tokens as if each had been tokenized alone).
    /// </summary>
    private async Task<GenerationStream[]> StartSamplesAsync(ApiRequest request, ulong seed, CancellationToken cancellation)
    {
        var samples = new GenerationStream[request.ChoiceCount];
        for (int first = 0; first < samples.Length; first += request.SampleCount)
        {
            samples[first] = await host.StartAsync(request.ToGeneration(seed, first), cancellation);
            if (request.SampleCount == 1) continue;
            var ids = await samples[first].WhenTokenized.WaitAsync(cancellation);
            // No ids: the first sample ended before it was tokenized; its error (if any) is the answer.
            if (ids is null) await samples[first].Result;
            for (int i = first + 1; i < first + request.SampleCount; i++)
            {
                var generation = request.ToGeneration(seed, i);
                samples[i] = await host.StartAsync(ids is null ? generation : generation with { Prompt = null, PromptIds = ids }, cancellation);
            }
        }
        return samples;
    }

    private async Task RespondAsync(HttpContext context, ResponseHeader header, ApiRequest request, GenerationStream[] samples, long arrived, CancellationToken cancellation)
    {
        var results = await Task.WhenAll(samples.Select(s => FailingTogether(samples, PumpAsync(s, arrived, _ => Task.CompletedTask, cancellation))));
        var choices = new JsonArray();
        for (int i = 0; i < results.Length; i++)
        {
            var r = results[i];
            var choice = header.Shape.Choice(i, r.Text, FinishReasonName(r, cancellation), request.Logprobs ? Logprobs(r) : null);
            choice["seed"] = unchecked(header.Seed + (ulong)i);
            choices.Add(choice);
        }
        var response = header.Object(header.Shape.ObjectName, choices);
        response["usage"] = Usage(results, request.SampleCount);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(ApiJson.Write(response), cancellation);
    }

    private async Task StreamAsync(HttpContext context, ResponseHeader header, ApiRequest request, GenerationStream[] samples, long arrived, CancellationToken cancellation)
    {
        var sse = await ServerSentEvents.StartAsync(context);
        try
        {
            for (int i = 0; i < samples.Length; i++)
                if (header.Shape.OpeningChunkChoice(i) is { } opening) await sse.WriteAsync(Chunk(header, request, opening));

            // The samples' tokens merge into one channel with a single reader, the response writer.
            var merged = Channel.CreateUnbounded<SampleEvent>(new UnboundedChannelOptions { SingleReader = true });
            var pumps = Task.WhenAll(samples.Select(async (sample, i) =>
            {
                var result = await FailingTogether(samples, PumpAsync(sample, arrived, e => merged.Writer.WriteAsync(new SampleEvent(i, e, null), cancellation).AsTask(), cancellation));
                await merged.Writer.WriteAsync(new SampleEvent(i, null, result), cancellation);
            }));
            _ = pumps.ContinueWith(t => merged.Writer.TryComplete(t.IsCanceled ? new OperationCanceledException() : t.Exception?.GetBaseException()), TaskScheduler.Default);

            var results = new GenerationResult[samples.Length];
            await foreach (var item in merged.Reader.ReadAllAsync(cancellation))
            {
                if (item.Result is { } result)
                {
                    results[item.Index] = result;
                    await sse.WriteAsync(Chunk(header, request, header.Shape.ChunkChoice(item.Index, "", FinishReasonName(result, cancellation), null)));
                    continue;
                }
                var token = item.Token!;
                var logprob = request.Logprobs ? LogprobEntry.From(token) : null;
                // An empty event holds back part of a character or of a possible stop string: nothing to show yet.
                if (token.Text.Length == 0 && logprob is null) continue;
                await sse.WriteAsync(Chunk(header, request, header.Shape.ChunkChoice(item.Index, token.Text, null, logprob is null ? null : [logprob])));
            }
            if (request.IncludeUsage)
            {
                var last = header.Object(header.Shape.ChunkObjectName, []);
                last["usage"] = Usage(results, request.SampleCount);
                await sse.WriteAsync(last);
            }
            await sse.WriteDoneAsync();
        }
        catch (Exception e) when (!cancellation.IsCancellationRequested)
        {
            // The status line is gone; tell the client in the stream, as OpenAI does, and end it.
            var (status, error) = ErrorResponses.Describe(e);
            if (status == HttpStatusCode.InternalServerError) log.LogError(e, "streaming request failed");
            await sse.WriteAsync(error);
        }
    }

    /// <summary>Reads one sample's tokens to the end, timing them for the latency histograms, and returns its result.</summary>
    /// <summary>With n &gt; 1 the response needs every sample: one that fails cancels its siblings (freeing their caches) rather than letting them run on for nothing.</summary>
    private static async Task<GenerationResult> FailingTogether(GenerationStream[] samples, Task<GenerationResult> pump)
    {
        try
        {
            return await pump;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            foreach (var sibling in samples) sibling.Cancel();
            throw;
        }
    }

    private async Task<GenerationResult> PumpAsync(GenerationStream sample, long arrived, Func<TokenEvent, Task> onToken, CancellationToken cancellation)
    {
        long last = arrived;
        bool first = true;
        await foreach (var token in sample.ReadAllAsync(cancellation))
        {
            if (token.TokenId >= 0)
            {
                long now = Stopwatch.GetTimestamp();
                (first ? metrics.TimeToFirstToken : metrics.InterTokenLatency).Observe(Stopwatch.GetElapsedTime(last, now));
                first = false;
                last = now;
            }
            await onToken(token);
        }
        return await sample.Result;
    }

    private static JsonObject Chunk(ResponseHeader header, ApiRequest request, JsonObject choice)
    {
        var chunk = header.Object(header.Shape.ChunkObjectName, [choice]);
        if (request.IncludeUsage) chunk["usage"] = null;
        return chunk;
    }

    private static JsonObject Usage(GenerationResult[] results, int samplesPerPrompt)
    {
        // Each prompt is read once however many samples continue it.
        int prompt = 0;
        for (int i = 0; i < results.Length; i += samplesPerPrompt) prompt += results[i].PromptIds.Count;
        int completion = results.Sum(r => r.CompletionIds.Count);
        return new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion };
    }

    private static List<LogprobEntry> Logprobs(GenerationResult result)
    {
        var entries = new List<LogprobEntry>();
        foreach (var token in result.Tokens)
            if (LogprobEntry.From(token) is { } entry) entries.Add(entry);
        return entries;
    }

    private static string FinishReasonName(GenerationResult result, CancellationToken cancellation) => result.FinishReason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        // Cancelled: either this client left (nobody to answer) or the host is shutting down.
        _ => cancellation.IsCancellationRequested
            ? throw new OperationCanceledException(cancellation)
            : throw new ApiException(HttpStatusCode.ServiceUnavailable, "The server is shutting down.", "server_error"),
    };

    private async Task<JsonDocument> ReadJsonAsync(HttpContext context)
    {
        var bytes = await RequestBody.ReadAsync(context, options.MaxRequestBodyBytes);
        // JSON strings are read lazily; invalid UTF-8 would surface later as a 500.
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
            throw ApiException.InvalidBody("The request body is not valid UTF-8.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw ApiException.InvalidBody($"The request body is not valid JSON: {e.Message}");
        }
        if (RequestBody.FirstLoneSurrogate(document.RootElement) is { } where)
        {
            document.Dispose();
            throw ApiException.InvalidBody($"The request body holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair) in {where}.");
        }
        return document;
    }

    /// <summary>A token of sample <see cref="Index"/>, or its result once it has ended.</summary>
    private sealed record SampleEvent(int Index, TokenEvent? Token, GenerationResult? Result);

    /// <summary>The fields every response and chunk of one request repeats.</summary>
    private sealed record ResponseHeader(IResponseShape Shape, string Id, long Created, string Model, ulong Seed)
    {
        public JsonObject Object(string objectName, JsonArray choices) => new()
        {
            ["id"] = Id,
            ["object"] = objectName,
            ["created"] = Created,
            ["model"] = Model,
            ["system_fingerprint"] = null,
            ["choices"] = choices,
            // Extension: the seed of sample 0; sample i ran with seed + i.
            ["seed"] = Seed,
        };
    }
}
