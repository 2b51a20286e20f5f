using System.Text.Json;

namespace Pipeline.Integration.Server;

/// <summary>Reads a server-sent-event response as its <c>data:</c> payloads, in order.</summary>
public static class SseReader
{
    public static async IAsyncEnumerable<string> DataAsync(HttpResponseMessage response)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
            if (line.StartsWith("data: ", StringComparison.Ordinal)) yield return line["data: ".Length..];
    }

    public static async Task<List<string>> AllDataAsync(HttpResponseMessage response)
    {
        var all = new List<string>();
        await foreach (var d in DataAsync(response)) all.Add(d);
        return all;
    }

    public static JsonElement Json(string data) => JsonDocument.Parse(data).RootElement;
}
