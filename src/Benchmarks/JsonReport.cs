using System.Text.Json;

namespace Pipeline.Benchmarks;

/// <summary>The report as JSON: {"machine", "model", "results": [{"mode", "concurrency", ...}]}.</summary>
internal static class JsonReport
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public static string Serialize(BenchReport report) => JsonSerializer.Serialize(report, Options);

    public static void Write(BenchReport report, string path)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
        File.WriteAllText(path, Serialize(report));
    }
}
