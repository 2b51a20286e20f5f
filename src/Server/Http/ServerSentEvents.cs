using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Pipeline.Server.Http;

/// <summary>
/// Writes a <c>text/event-stream</c> response, one <c>data:</c> event per chunk, flushed at once
/// so that each token reaches the client when it is sampled.
/// </summary>
internal sealed class ServerSentEvents
{
    private readonly HttpResponse _response;
    private readonly CancellationToken _cancellation;

    private ServerSentEvents(HttpResponse response, CancellationToken cancellation)
    {
        _response = response;
        _cancellation = cancellation;
    }

    public static async Task<ServerSentEvents> StartAsync(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(context.RequestAborted);
        return new ServerSentEvents(response, context.RequestAborted);
    }

    public Task WriteAsync(JsonNode data) => WriteRawAsync(ApiJson.Write(data));

    /// <summary>The terminator OpenAI clients wait for.</summary>
    public Task WriteDoneAsync() => WriteRawAsync("[DONE]");

    private async Task WriteRawAsync(string data)
    {
        await _response.Body.WriteAsync(Encoding.UTF8.GetBytes($"data: {data}\n\n"), _cancellation);
        await _response.Body.FlushAsync(_cancellation);
    }
}
