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
    /// Unless <c>--token-check report</c> was given, a report exists only when all matched: a mismatch
    /// aborts the run (TokenMismatchException).
    /// </summary>
    [JsonPropertyName("token_check_comparisons")] public required int TokenCheckComparisons { get; init; }

    /// <summary>Completions that differed from the reference run's (only under <c>--token-check report</c>; otherwise 0).</summary>
    [JsonPropertyName("token_mismatches")] public int TokenMismatches { get; init; }

    /// <summary>The first difference, described, or null.</summary>
    [JsonPropertyName("first_token_mismatch")] public string? FirstTokenMismatch { get; init; }
    [JsonPropertyName("results")] public required IReadOnlyList<ModeResult> Results { get; init; }
}
