namespace Pipeline.Benchmarks;

/// <summary>
/// The actor pipeline: a fresh <see cref="PipelineHost"/> over the shared model, its batch at
/// least the concurrency, tokens taken from the stream as each is sampled.
/// </summary>
internal static class PipelineMode
{
    public static async Task<ModeOutcome> RunAsync(ModeContext context)
    {
        var options = new PipelineHostOptions
        {
            MaxBatch = Math.Max(1, context.Concurrency),
            AdmissionCapacity = Math.Max(64, context.Concurrency),
            KvBudgetBytes = context.KvBudgetBytes,
        };
        await using var host = PipelineHost.Start(context.Model, options);
        var wall = await ClientDriver.RunAsync(context.Requests, context.Traces, context.Concurrency, async (request, trace) =>
        {
            var generation = new GenerationRequest
            {
                PromptIds = request.PromptIds,
                MaxTokens = context.Workload.MaxTokens,
                IgnoreEos = context.Workload.IgnoreEos,
                Seed = request.Seed,
                Sampling = context.Workload.Sampling,
            };
            await foreach (var e in host.GenerateAsync(generation, context.Cancellation))
                if (e.TokenId >= 0) trace.TokenArrived(e.TokenId); // -1 carries held-back text only
        }, context.Completed, context.Cancellation);
        return new ModeOutcome(wall, host.KvMemory.PeakBytes, host.Counters.Times);
    }
}
