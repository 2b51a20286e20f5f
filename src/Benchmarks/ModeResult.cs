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

    /// <summary>A resident pool's decode call, taken apart (means per decode step); absent without a pool.</summary>
    [JsonPropertyName("resident_phases"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public ResidentPhasesPerStep? ResidentPhases { get; init; }
}

/// <summary>Milliseconds per decode step in each phase of a resident decode call (see ResidentPhaseTimes).</summary>
internal sealed record ResidentPhasesPerStep(
    [property: JsonPropertyName("place_ms")] double PlaceMs,
    [property: JsonPropertyName("inputs_ms")] double InputsMs,
    [property: JsonPropertyName("run_ms")] double RunMs,
    [property: JsonPropertyName("logits_ms")] double LogitsMs,
    [property: JsonPropertyName("append_ms")] double AppendMs,
    [property: JsonPropertyName("part_calls_per_step")] double PartCalls,
    [property: JsonPropertyName("uploads_per_step")] double Uploads)
{
    public static ResidentPhasesPerStep Of(Pipeline.Inference.Runtime.Resident.ResidentPhaseTimes.Snapshot s, long steps) =>
        new(s.PlaceMs / steps, s.InputsMs / steps, s.RunMs / steps, s.LogitsMs / steps, s.AppendMs / steps, (double)s.PartCalls / steps, (double)s.Uploads / steps);
}
