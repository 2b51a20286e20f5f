using System.Text.Json.Serialization;

namespace Pipeline.Benchmarks;

/// <summary>One row of the report: one mode at one concurrency.</summary>
internal sealed record ModeResult
{
    [JsonPropertyName("mode")] public required string Mode { get; init; }
    [JsonPropertyName("concurrency")] public required int Concurrency { get; init; }
    [JsonPropertyName("tokens_per_second")] public required double TokensPerSecond { get; init; }
    /// <summary>
    /// The decode phase's rate: tokens after each request's first, over the time from the first token
    /// any request got to the last token (prompt processing left out, as llama-batched-bench's S_TG
    /// leaves it out; <see cref="TokensPerSecond"/> counts it). 0 when no request got two tokens.
    /// </summary>
    [JsonPropertyName("generation_tokens_per_second")] public double GenerationTokensPerSecond { get; init; }
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
    /// <summary>Percent of decode rows handed to sample while their step's call still ran (a resident pool's earlier parts).</summary>
    [JsonPropertyName("sampled_during_call_percent"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? SampledDuringCallPercent { get; init; }
    [JsonPropertyName("prefill_calls"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? PrefillCalls { get; init; }
    [JsonPropertyName("prefill_call_ms"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? PrefillCallMs { get; init; }

    /// <summary>The garbage collector's pauses during the run (every thread stopped), ms, and its full (gen2) collections.</summary>
    [JsonPropertyName("gc_pause_ms")] public double GcPauseMs { get; init; }
    [JsonPropertyName("gc_full_collections")] public int FullCollections { get; init; }

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
    /// <summary>Host work per upload (gathering and narrowing a cache; launching the slot's zeroing), ms.</summary>
    [JsonPropertyName("upload_host_ms")] public double UploadHostMs { get; init; }
    /// <summary>Device copies per upload (up, then spread into the slot), ms.</summary>
    [JsonPropertyName("upload_copies_ms")] public double UploadCopiesMs { get; init; }
    /// <summary>Renting parts (allocating one the first time), ms over the whole run.</summary>
    [JsonPropertyName("part_rents_ms")] public double RentMs { get; init; }
    [JsonPropertyName("write_backs")] public long WriteBacks { get; init; }
    /// <summary>Part calls that ran the small call (over a part's first slots), % of part calls.</summary>
    [JsonPropertyName("small_calls_percent")] public double SmallCallsPercent { get; init; }
    /// <summary>Writing held positions back, ms over the whole run.</summary>
    [JsonPropertyName("write_backs_ms")] public double WriteBackMs { get; init; }
    /// <summary>Prefill calls' model run, ms per call.</summary>
    [JsonPropertyName("prefill_run_ms")] public double PrefillRunMs { get; init; }
    /// <summary>Prefill calls' host copies after the run (presents into the caches), ms per call.</summary>
    [JsonPropertyName("prefill_copies_ms")] public double PrefillCopiesMs { get; init; }

    public static ResidentPhasesPerStep Of(Pipeline.Inference.Runtime.Resident.ResidentPhaseTimes.Snapshot s, long steps) =>
        new(s.PlaceMs / steps, s.InputsMs / steps, s.RunMs / steps, s.LogitsMs / steps, s.AppendMs / steps, (double)s.PartCalls / steps, (double)s.Uploads / steps)
        {
            UploadHostMs = s.Uploads > 0 ? s.UploadHostMs / s.Uploads : 0,
            UploadCopiesMs = s.Uploads > 0 ? s.UploadCopiesMs / s.Uploads : 0,
            RentMs = s.RentMs,
            WriteBacks = s.WriteBacks,
            SmallCallsPercent = s.PartCalls > 0 ? 100.0 * s.SmallCalls / s.PartCalls : 0,
            WriteBackMs = s.WriteBackMs,
            PrefillRunMs = s.PrefillCalls > 0 ? s.PrefillRunMs / s.PrefillCalls : 0,
            PrefillCopiesMs = s.PrefillCalls > 0 ? s.PrefillCopiesMs / s.PrefillCalls : 0,
        };
}
