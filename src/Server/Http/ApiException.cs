using System.Net;

namespace Pipeline.Server.Http;

/// <summary>
/// A failure the client should see, in OpenAI's error shape. Thrown by the request handlers and
/// turned into a response by <see cref="ErrorResponses"/>.
/// </summary>
internal sealed class ApiException(HttpStatusCode status, string message, string type, string? param = null, string? code = null)
    : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiException InvalidParameter(string param, string message)
        => new(HttpStatusCode.BadRequest, message, "invalid_request_error", param, "invalid_value");

    public static ApiException InvalidBody(string message)
        => new(HttpStatusCode.BadRequest, message, "invalid_request_error", null, "invalid_json");

    public static ApiException ModelNotFound(string model)
        => new(HttpStatusCode.NotFound, $"The model '{model}' does not exist.", "invalid_request_error", "model", "model_not_found");
}
