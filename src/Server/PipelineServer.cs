using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Server.Http;
using Pipeline.Server.Metrics;
using Pipeline.Server.OpenAi;

namespace Pipeline.Server;

/// <summary>
/// The OpenAI-compatible HTTP server over one <see cref="PipelineHost"/>: Kestrel, the routes,
/// and the limits. The host belongs to the caller, who starts it (with
/// <see cref="PipelineHostOptions.RejectWhenFull"/> so a full queue answers 429) and disposes it
/// after the server.
/// </summary>
public sealed class PipelineServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private PipelineServer(WebApplication app) => _app = app;

    /// <summary>The addresses actually bound (a requested port 0 reads as the port chosen).</summary>
    public IReadOnlyList<Uri> Addresses => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!
        .Addresses.Select(a => new Uri(a)).ToArray();

    public static async Task<PipelineServer> StartAsync(PipelineHost host, PipelineServerOptions options, CancellationToken cancellation = default)
    {
        var server = new PipelineServer(Build(host, options));
        await server._app.StartAsync(cancellation);
        return server;
    }

    /// <summary>Completes when the application is asked to stop (Ctrl+C, SIGTERM) and has stopped.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellation = default) => _app.WaitForShutdownAsync(cancellation);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static WebApplication Build(PipelineHost host, PipelineServerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls([.. options.Urls]);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            kestrel.Limits.KeepAliveTimeout = options.KeepAliveTimeout;
            kestrel.Limits.RequestHeadersTimeout = options.RequestHeadersTimeout;
        });
        builder.Services.AddSingleton(host);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<ServerMetrics>();
        builder.Services.AddSingleton<CompletionEndpoint>();

        var app = builder.Build();
        app.UseMiddleware<ErrorResponses>();
        app.UseMiddleware<ApiKeyCheck>();

        var completions = app.Services.GetRequiredService<CompletionEndpoint>();
        app.MapPost("/v1/completions", completions.CompletionsAsync);
        app.MapPost("/v1/chat/completions", completions.ChatCompletionsAsync);
        app.MapGet("/v1/models", context => WriteJsonAsync(context, new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(ModelObject(host)),
        }));
        app.MapGet("/v1/models/{id}", context => (string?)context.Request.RouteValues["id"] == host.Model.Name
            ? WriteJsonAsync(context, ModelObject(host))
            : throw ApiException.ModelNotFound((string?)context.Request.RouteValues["id"] ?? ""));
        app.MapGet("/health", context =>
        {
            // A faulted pipeline (restarting, or faulted for good) or a draining host takes no requests: say so, and why.
            if (host.FaultReason is { } reason)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return WriteJsonAsync(context, new JsonObject { ["status"] = "faulted", ["reason"] = reason, ["model"] = host.Model.Name });
            }
            if (host.IsDraining)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return WriteJsonAsync(context, new JsonObject { ["status"] = "draining", ["model"] = host.Model.Name });
            }
            return WriteJsonAsync(context, new JsonObject { ["status"] = "ok", ["model"] = host.Model.Name });
        });
        var metrics = app.Services.GetRequiredService<ServerMetrics>();
        app.MapGet("/metrics", context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return context.Response.WriteAsync(metrics.Render(host), context.RequestAborted);
        });
        string[] postOnly = ["/v1/completions", "/v1/chat/completions"];
        app.MapFallback("{**path}", context => throw (postOnly.Contains(context.Request.Path.Value?.TrimEnd('/'), StringComparer.OrdinalIgnoreCase)
            ? new ApiException(HttpStatusCode.MethodNotAllowed, $"Method {context.Request.Method} is not allowed for {context.Request.Path}; use POST.", "invalid_request_error", null, "method_not_allowed")
            : new ApiException(HttpStatusCode.NotFound, $"Unknown request URL: {context.Request.Method} {context.Request.Path}.", "invalid_request_error", null, "unknown_url")));
        return app;
    }

    private static JsonObject ModelObject(PipelineHost host) => new()
    {
        ["id"] = host.Model.Name,
        ["object"] = "model",
        ["created"] = 0,
        ["owned_by"] = "pipeline",
        ["context_length"] = host.Model.Decoder.Config.SeqLen,
    };

    private static Task WriteJsonAsync(HttpContext context, JsonObject body)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(ApiJson.Write(body), context.RequestAborted);
    }
}
