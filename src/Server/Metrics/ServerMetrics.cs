using System.Globalization;
using System.Text;

namespace Pipeline.Server.Metrics;

/// <summary>
/// What the server measures itself (latencies as its clients see them) plus the host's live
/// counters, written in the Prometheus text exposition format for <c>GET /metrics</c>.
/// </summary>
internal sealed class ServerMetrics
{
    /// <summary>From the request's arrival to its first sampled token, per sample.</summary>
    public PrometheusHistogram TimeToFirstToken { get; } = new("pipeline_time_to_first_token_seconds",
        "Time from a request's arrival to its first generated token.", PrometheusHistogram.DefaultBounds);

    /// <summary>Between consecutive tokens of one sample.</summary>
    public PrometheusHistogram InterTokenLatency { get; } = new("pipeline_inter_token_latency_seconds",
        "Time between two consecutive generated tokens of one sequence.", PrometheusHistogram.DefaultBounds);

    public string Render(PipelineHost host)
    {
        var text = new StringBuilder();
        Gauge(text, "pipeline_queue_depth", "Requests admitted but not yet tokenized.", host.QueueDepth);
        Gauge(text, "pipeline_active_sequences", "Sequences being prefilled or decoded.", host.Counters.ActiveSequences);
        Gauge(text, "pipeline_last_batch_size", "Sequences in the most recent decode step.", host.Counters.LastBatchSize);
        Counter(text, "pipeline_tokens_generated_total", "Tokens sampled since the host started.", host.Counters.TokensGenerated);
        Counter(text, "pipeline_decode_steps_total", "Batched decode steps run since the host started.", host.Counters.DecodeSteps);
        var times = host.Counters.Times;
        Seconds(text, "pipeline_decode_call_seconds_total", "Time inside decode steps' model calls since the host started.", times.DecodeCalls);
        Seconds(text, "pipeline_sampling_seconds_total", "Time decode steps waited for their tokens to be sampled since the host started.", times.Sampling);
        Counter(text, "pipeline_prefill_calls_total", "Prefill model calls since the host started.", times.PrefillCalls);
        Seconds(text, "pipeline_prefill_call_seconds_total", "Time inside prefill model calls since the host started.", times.PrefillCallTime);
        Gauge(text, "pipeline_kv_cache_bytes", "Bytes held by live KV caches (used: never more than reserved).", host.KvMemory.Bytes);
        Gauge(text, "pipeline_kv_caches", "Live KV caches.", host.KvMemory.LiveCaches);
        Gauge(text, "pipeline_kv_budget_bytes", "Bytes of KV cache the host's requests may reserve at once.", host.KvBudget.Bytes);
        Gauge(text, "pipeline_kv_reserved_bytes", "Bytes of the KV budget reserved by admitted requests (prompt + max_tokens positions each); used bytes never exceed them.", host.KvBudget.ReservedBytes);
        Gauge(text, "pipeline_kv_budget_waiting", "Requests waiting for KV budget.", host.KvBudget.Waiting);
        Counter(text, "pipeline_kv_budget_waits_total", "Requests that had to wait for KV budget since the host started.", host.KvBudget.Waits);
        Counter(text, "pipeline_prompts_tokenized_total", "Text prompts the tokenizer encoded (n samples of one prompt count once).", host.Counters.PromptsTokenized);
        Counter(text, "pipeline_actor_faults_total", "Actor faults (each aborted the pipeline and failed the requests in flight).", host.Faults);
        Counter(text, "pipeline_restarts_total", "Pipelines started to replace faulted ones.", host.Restarts);
        Gauge(text, "pipeline_faulted", "1 while the host takes no requests because of a fault (restarting or faulted for good).", host.FaultReason is null ? 0 : 1);
        TimeToFirstToken.WriteTo(text);
        InterTokenLatency.WriteTo(text);
        return text.ToString();
    }

    private static void Gauge(StringBuilder text, string name, string help, long value) => Metric(text, name, help, "gauge", value);
    private static void Counter(StringBuilder text, string name, string help, long value) => Metric(text, name, help, "counter", value);

    private static void Seconds(StringBuilder text, string name, string help, TimeSpan value) =>
        Metric(text, name, help, "counter", value.TotalSeconds.ToString("R", CultureInfo.InvariantCulture));

    private static void Metric(StringBuilder text, string name, string help, string type, long value) =>
        Metric(text, name, help, type, value.ToString(CultureInfo.InvariantCulture));

    private static void Metric(StringBuilder text, string name, string help, string type, string value)
        => text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
            .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n')
            .Append(name).Append(' ').Append(value).Append('\n');
}
