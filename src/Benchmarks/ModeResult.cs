using System.Text.Json.Serialization;

namespace Pipeline.Benchmarks;

/// <summary>One row of the report: one mode at one concurrency.</summary>
internal sealed record ModeResult
{
    [JsonPropertyName("mode")] public required string Mode { get; init; }
    [JsonPropertyName("concurrency")] public required int Concurrency { get; init; }
    [JsonPropertyName("tokens_per_second")] public required double TokensPerSecond { get; init; }
    [JsonPropertyName("requests_per_second")] public required double RequestsPerSecond { get; init; }
    [JsonPropertyName("ttft_p50_ms")] public required double TtftP50Ms { get; init; }
    [JsonPropertyName("ttft_p99_ms")] public required double TtftP99Ms { get; init; }
    [JsonPropertyName("itl_p50_ms")] public required double ItlP50Ms { get; init; }
    [JsonPropertyName("itl_p99_ms")] public required double ItlP99Ms { get; init; }
    [JsonPropertyName("peak_working_set_mb")] public required double PeakWorkingSetMb { get; init; }
    [JsonPropertyName("peak_kv_mb")] public required double PeakKvMb { get; init; }
    [JsonPropertyName("generated_tokens")] public required long GeneratedTokens { get; init; }
    [JsonPropertyName("wall_seconds")] public required double WallSeconds { get; init; }

    // Where the actor pipeline's model time went (absent for the other modes): means per call.
    [JsonPropertyName("decode_steps"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? DecodeSteps { get; init; }
    [JsonPropertyName("decode_rows_per_step"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? DecodeRowsPerStep { get; init; }
    [JsonPropertyName("decode_call_ms"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? DecodeCallMs { get; init; }
    [JsonPropertyName("sampling_ms"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? SamplingMs { get; init; }
    [JsonPropertyName("prefill_calls"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? PrefillCalls { get; init; }
    [JsonPropertyName("prefill_call_ms"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? PrefillCallMs { get; init; }
}
