using Pipeline.Inference.Runtime;

namespace Pipeline.Extensions.AI;

/// <summary>What <see cref="PipelineServiceCollectionExtensions.AddPipeline"/> starts.</summary>
public sealed class PipelineServiceOptions
{
    /// <summary>How to start the host. A record: replace it whole, <c>o.Host = o.Host with { MaxBatch = 8 }</c>.</summary>
    public PipelineHostOptions Host { get; set; } = new();

    /// <summary>An already loaded model to run on instead of loading <see cref="PipelineHostOptions.ModelPath"/>; its owner keeps it (tests share one).</summary>
    internal LoadedModel? Model { get; set; }
}
