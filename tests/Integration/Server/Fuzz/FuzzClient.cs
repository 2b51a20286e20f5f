using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Pipeline.Integration.Server.Fuzz;

/// <summary>What one fuzzed request got back: its status, and why it breaks the server's contract (null when it does not).</summary>
public sealed record FuzzOutcome(int Status, bool Streamed, string? Violation);

/// <summary>
/// Sends a <see cref="FuzzRequest"/> to a real server and checks the answer against the contract
/// every request has, whatever its body: an answer within the deadline (a stream read to its end),
/// never a 5xx, every 4xx in OpenAI's error shape, every 200 well formed.
/// </summary>
public sealed class FuzzClient(Uri baseAddress, string apiKey) : IDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http = new(new SocketsHttpHandler { MaxResponseDrainSize = 0 })
    {
        BaseAddress = baseAddress,
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public async Task<FuzzOutcome> SendAsync(FuzzRequest request)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(request.Path, UriKind.Relative));
        if (request.Body is not null)
        {
            var content = new ByteArrayContent(request.Body);
            if (request.ContentType is not null) content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType);
            message.Content = content;
            if (request.Chunked) message.Headers.TransferEncodingChunked = true;
        }
        if (request.Auth != FuzzAuth.NoKey)
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", request.Auth == FuzzAuth.Key ? apiKey : apiKey + "-wrong");
        try
        {
            using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            int status = (int)response.StatusCode;
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            if (mediaType == "text/event-stream")
                return new FuzzOutcome(status, true, CheckStream(status, await ReadEventsAsync(response, deadline.Token)));
            var body = await response.Content.ReadAsStringAsync(deadline.Token);
            return new FuzzOutcome(status, false, Check(request, response, status, mediaType, body));
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return new FuzzOutcome(0, false, $"no complete answer within {Deadline.TotalSeconds} s (a hang)");
        }
        catch (HttpRequestException e)
        {
            return new FuzzOutcome(0, false, $"the connection failed before a readable answer: {e.Message} ({e.InnerException?.Message})");
        }
    }

    private static string? Check(FuzzRequest request, HttpResponseMessage response, int status, string? mediaType, string body)
    {
        if (status >= 500) return $"{status}: {Cut(body)}";
        if (body.Contains(" at Pipeline.", StringComparison.Ordinal)) return $"a stack trace reached the client: {Cut(body)}";
        if (status >= 400) return ErrorShape(status, mediaType, body);
        if (status != 200) return $"unexpected status {status}: {Cut(body)}";
        string path = request.Path.Split('?')[0].TrimEnd('/').ToLowerInvariant();
        if (path == "/metrics") return response.Content.Headers.ContentType?.MediaType == "text/plain" ? null : $"/metrics answered {mediaType}";
        if (mediaType != "application/json") return $"200 with content type {mediaType}: {Cut(body)}";
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(body).RootElement;
        }
        catch (JsonException e)
        {
            return $"200 whose body is not JSON ({e.Message}): {Cut(body)}";
        }
        if (path.EndsWith("completions", StringComparison.Ordinal))
        {
            if (!root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
                return $"a completion without choices: {Cut(body)}";
            foreach (var choice in choices.EnumerateArray())
                if (!choice.TryGetProperty("finish_reason", out var reason) || reason.GetString() is not ("stop" or "length"))
                    return $"a choice without a finish reason: {Cut(body)}";
            if (!root.TryGetProperty("usage", out _)) return $"a completion without usage: {Cut(body)}";
        }
        return null;
    }

    /// <summary>OpenAI's error shape: <c>{"error":{"message":string,"type":string,"param":string|null,"code":string|null}}</c>.</summary>
    public static string? ErrorShape(int status, string? mediaType, string body)
    {
        if (mediaType != "application/json") return $"{status} with content type {mediaType ?? "(none)"}, not an error JSON: '{Cut(body)}'";
        try
        {
            var root = JsonDocument.Parse(body).RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
                return $"{status} without an error object: {Cut(body)}";
            if (!error.TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.String || message.GetString()!.Length == 0)
                return $"{status} without a message: {Cut(body)}";
            if (!error.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                return $"{status} without a type: {Cut(body)}";
            foreach (var name in new[] { "param", "code" })
                if (!error.TryGetProperty(name, out var value) || value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                    return $"{status} without '{name}' (a string or null): {Cut(body)}";
            return null;
        }
        catch (JsonException e)
        {
            return $"{status} whose body is not JSON ({e.Message}): '{Cut(body)}'";
        }
    }

    private static async Task<List<string>> ReadEventsAsync(HttpResponseMessage response, CancellationToken cancellation)
    {
        var events = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellation), Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellation) is { } line)
            if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(line["data: ".Length..]);
        return events;
    }

    /// <summary>A stream is a 200 of JSON chunks (at least one with a finish reason) ending in [DONE], with no error inside.</summary>
    private static string? CheckStream(int status, List<string> events)
    {
        if (status != 200) return $"a stream with status {status}";
        if (events.Count == 0 || events[^1] != "[DONE]") return $"a stream that does not end with [DONE]: {Cut(string.Join(" | ", events.TakeLast(3)))}";
        bool finished = false;
        foreach (var data in events.SkipLast(1))
        {
            JsonElement chunk;
            try
            {
                chunk = JsonDocument.Parse(data).RootElement;
            }
            catch (JsonException e)
            {
                return $"a stream event that is not JSON ({e.Message}): {Cut(data)}";
            }
            if (chunk.TryGetProperty("error", out _)) return $"a stream that failed after it began: {Cut(data)}";
            if (chunk.TryGetProperty("choices", out var choices))
                foreach (var choice in choices.EnumerateArray())
                    finished |= choice.TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String;
        }
        return finished ? null : "a stream without a finish reason";
    }

    private static string Cut(string text) => text.Length <= 600 ? text : text[..600] + "...";

    public void Dispose() => _http.Dispose();
}
