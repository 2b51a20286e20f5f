using Pipeline.Inference.Runtime;

namespace Pipeline.Benchmarks;

/// <summary>
/// The usual fix in other runtimes, mocked here as the baseline: every request runs on its own
/// task with its own cache and sampler state, and every model call takes one global lock. Calls
/// never batch, so concurrency only overlaps sampling with other requests' model calls.
/// </summary>
internal static class GlobalLockMode
{
    public static async Task<ModeOutcome> RunAsync(ModeContext context)
    {
        var account = new KvMemoryAccount();
        using var modelLock = new SemaphoreSlim(1, 1);
        var wall = await ClientDriver.RunAsync(context.Requests, context.Traces, context.Concurrency,
            (request, trace) => Task.Run(() => SoloGeneration.RunAsync(context.Model.Decoder, context.Model.Tokenizer, request, context.Workload, account, modelLock, trace)),
            context.Completed, context.Cancellation);
        return new ModeOutcome(wall, account.PeakBytes);
    }
}
