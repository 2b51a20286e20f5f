using System.Threading.Channels;
using Pipeline.Inference.Runtime;

namespace Pipeline.Benchmarks;

/// <summary>
/// One worker serves requests one at a time in arrival order; clients still issue up to the
/// concurrency, so their time to first token includes the wait in this queue.
/// </summary>
internal static class SerialMode
{
    public static async Task<ModeOutcome> RunAsync(ModeContext context)
    {
        var account = new KvMemoryAccount();
        var queue = Channel.CreateUnbounded<(BenchRequest Request, RequestTrace Trace, TaskCompletionSource Done)>(
            new UnboundedChannelOptions { SingleReader = true });
        var worker = Task.Run(async () =>
        {
            await foreach (var (request, trace, done) in queue.Reader.ReadAllAsync())
            {
                try
                {
                    await SoloGeneration.RunAsync(context.Model.Decoder, context.Model.Tokenizer, request, context.Workload, account, modelLock: null, trace);
                    done.SetResult();
                }
                catch (Exception e) { done.SetException(e); }
            }
        });
        try
        {
            var wall = await ClientDriver.RunAsync(context.Requests, context.Traces, context.Concurrency, (request, trace) =>
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                queue.Writer.TryWrite((request, trace, done));
                return done.Task;
            }, context.Completed, context.Cancellation);
            return new ModeOutcome(wall, account.PeakBytes);
        }
        finally
        {
            queue.Writer.TryComplete();
            await worker;
        }
    }
}
