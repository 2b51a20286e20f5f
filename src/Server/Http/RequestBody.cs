using System.Buffers;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Pipeline.Server.Http;

/// <summary>
/// Reads a request body up to the server's limit. A body over the limit is read on to its end
/// (discarded, up to <see cref="DrainLimit"/>) before the 413 is sent: a server that answers
/// while the client is still sending resets the connection, and the client never reads the 413.
/// </summary>
internal static class RequestBody
{
    /// <summary>The most an oversized body is read (and discarded) so that its 413 can be read.</summary>
    public const long DrainLimit = 64L << 20;

    public static async Task<ReadOnlyMemory<byte>> ReadAsync(HttpContext context, long limit)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = DrainLimit;
        long? declared = context.Request.ContentLength;
        if (declared > DrainLimit) throw TooLarge(limit); // too large even to drain: the connection closes
        var body = new ArrayBufferWriter<byte>((int)Math.Min(declared ?? 4096, limit) + 1);
        var stream = context.Request.Body;
        long total = 0;
        var scratch = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(scratch, context.RequestAborted)) > 0)
            {
                total += read;
                if (total <= limit) body.Write(scratch.AsSpan(0, read));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        if (total > limit) throw TooLarge(limit);
        return body.WrittenMemory;
    }

    /// <summary>
    /// Reads and discards whatever of the body the handler left unread (up to <see cref="DrainLimit"/>),
    /// so that an answer given before the body was read (401, 404, 405, 413) reaches a client that
    /// is still sending, and the connection stays usable for its next request. Kestrel would
    /// otherwise drain it only up to the server's body limit and then close a connection whose
    /// response promised to keep it open. A body beyond the drain limit closes the connection.
    /// </summary>
    public static async Task DiscardUnreadAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.RequestAborted.IsCancellationRequested) return;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = DrainLimit;
        if (context.Request.ContentLength > DrainLimit)
        {
            CloseAfterResponse(context);
            return;
        }
        var scratch = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (await context.Request.Body.ReadAsync(scratch, context.RequestAborted) > 0) { }
        }
        catch (BadHttpRequestException)
        {
            // Beyond the drain limit, or a malformed (chunked) body: nothing more can be read on this connection.
            CloseAfterResponse(context);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client went away.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static void CloseAfterResponse(HttpContext context)
    {
        if (!context.Response.HasStarted) context.Response.Headers.Connection = "close";
    }

    private static ApiException TooLarge(long limit) => new(HttpStatusCode.RequestEntityTooLarge,
        $"The request body is too large: the limit is {limit} bytes.", "invalid_request_error", null, "request_too_large");

    /// <summary>Where the first string (or property name) holding an unpaired surrogate is, as a JSON path; null when none does.</summary>
    public static string? FirstLoneSurrogate(JsonElement element, string path = "$")
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return Readable(() => element.GetString()!) ? null : path;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in element.EnumerateArray())
                    if (FirstLoneSurrogate(item, $"{path}[{i++}]") is { } found) return found;
                return null;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (!Readable(() => property.Name)) return $"{path} (a property name)";
                    if (FirstLoneSurrogate(property.Value, $"{path}.{property.Name}") is { } found) return found;
                }
                return null;
            default:
                return null;
        }
    }

    /// <summary>System.Text.Json refuses to read an escaped lone surrogate as a string (it throws); either way it is no text.</summary>
    private static bool Readable(Func<string> read)
    {
        try { return !HasLoneSurrogate(read()); }
        catch (InvalidOperationException) { return false; }
    }

    private static bool HasLoneSurrogate(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }
}
