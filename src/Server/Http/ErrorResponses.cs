using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Inference.Sampling;
using Pipeline.Inference.Text;

namespace Pipeline.Server.Http;

/// <summary>
/// Middleware that turns every failure into OpenAI's error JSON with the right status, and never
/// lets a stack trace reach the client. A failure after a streaming response has begun cannot
/// change the status any more; the stream writer reports those itself.
/// </summary>
internal sealed class ErrorResponses(RequestDelegate next, ILogger<ErrorResponses> log, PipelineServerOptions options)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
            // A handler that answered without reading the body (GET /health with one) leaves it to be drained here.
            await RequestBody.DiscardUnreadAsync(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its request was cancelled through RequestAborted. Nobody to answer.
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            var (status, body) = Describe(e);
            if (status == HttpStatusCode.InternalServerError) log.LogError(e, "request failed");
            if (status == HttpStatusCode.TooManyRequests)
                context.Response.Headers.RetryAfter = options.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await WriteAsync(context, status, body);
        }
    }

    /// <summary>Writes an error answer, after reading what the client still sends of its body so that it can read the answer.</summary>
    public static async Task WriteAsync(HttpContext context, HttpStatusCode status, JsonObject body)
    {
        await RequestBody.DiscardUnreadAsync(context);
        context.Response.StatusCode = (int)status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(ApiJson.Write(body), context.RequestAborted);
    }

    public static (HttpStatusCode Status, JsonObject Body) Describe(Exception e) => e switch
    {
        ApiException a => (a.Status, ErrorBody.Create(a.Message, a.Type, a.Param, a.Code)),
        InvalidRequestException ire => (HttpStatusCode.BadRequest,
            ErrorBody.Create(ExceptionText.WithoutParameterSuffix(ire), "invalid_request_error", ire.ParamName, "invalid_value")),
        PipelineBusyException busy => (HttpStatusCode.TooManyRequests,
            ErrorBody.Create(busy.Message, "rate_limit_error", null, "queue_full")),
        PipelineUnavailableException down => (HttpStatusCode.ServiceUnavailable,
            ErrorBody.Create(down.Message, "server_error", null, "service_unavailable")),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => (HttpStatusCode.RequestEntityTooLarge,
            ErrorBody.Create("The request body is too large.", "invalid_request_error", null, "request_too_large")),
        BadHttpRequestException bad => ((HttpStatusCode)bad.StatusCode,
            ErrorBody.Create("The request could not be read.", "invalid_request_error", null, null)),
        _ => (HttpStatusCode.InternalServerError,
            ErrorBody.Create("The server failed to handle the request.", "server_error", null, null)),
    };
}
