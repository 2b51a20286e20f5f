using System.Text.Json.Serialization;

namespace Pipeline.Benchmarks;

/// <summary>A whole benchmark: where it ran, on what, and one row per (mode, concurrency).</summary>
public sealed record BenchReport
{
    [JsonPropertyName("machine")] public required string Machine { get; init; }
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("workload")] public required string Workload { get; init; }
    /// <summary>True once every run's tokens matched the reference run, request by request.</summary>
    [JsonPropertyName("tokens_identical")] public required bool TokensIdentical { get; init; }
    /// <summary>How many (run, request) completions the check compared.</summary>
    [JsonPropertyName("token_check_comparisons")] public required int TokenCheckComparisons { get; init; }
    [JsonPropertyName("results")] public required IReadOnlyList<ModeResult> Results { get; init; }
}
