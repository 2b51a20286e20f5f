using System.Text.Json.Serialization;

namespace Pipeline.Benchmarks;

/// <summary>A whole benchmark: where it ran, on what, and one row per (mode, concurrency).</summary>
internal sealed record BenchReport
{
    [JsonPropertyName("machine")] public required string Machine { get; init; }
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("workload")] public required string Workload { get; init; }
    /// <summary>
    /// How many (run, request) completions were compared with the reference run, token for token.
    /// A report exists only when all matched: a mismatch aborts the run (TokenMismatchException).
    /// </summary>
    [JsonPropertyName("token_check_comparisons")] public required int TokenCheckComparisons { get; init; }
    [JsonPropertyName("results")] public required IReadOnlyList<ModeResult> Results { get; init; }
}
