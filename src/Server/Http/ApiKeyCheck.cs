using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Pipeline.Server.Http;

/// <summary>
/// Middleware: when an API key is configured, /v1 requests must carry it as a bearer token.
/// /health and /metrics stay open so probes and scrapers need no secret.
/// </summary>
internal sealed class ApiKeyCheck(RequestDelegate next, PipelineServerOptions options)
{
    private readonly byte[]? _expected = options.ApiKey is { Length: > 0 } key ? Encoding.UTF8.GetBytes(key) : null;

    public async Task InvokeAsync(HttpContext context)
    {
        if (_expected is null || !context.Request.Path.StartsWithSegments("/v1") || Authorized(context.Request))
        {
            await next(context);
            return;
        }
        context.Response.Headers.WWWAuthenticate = "Bearer";
        await ErrorResponses.WriteAsync(context, HttpStatusCode.Unauthorized,
            ErrorBody.Create("Missing or incorrect API key. Send it as 'Authorization: Bearer KEY'.", "invalid_request_error", null, "invalid_api_key"));
    }

    private bool Authorized(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        const string scheme = "Bearer ";
        if (header is null || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        // Constant-time comparison: the time taken must not tell how much of the key was right.
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), _expected);
    }
}
