using System.Diagnostics;

namespace Pipeline.Benchmarks;

/// <summary>
/// Plays a workload against one mode: issues each request at its arrival time, never more than
/// <c>concurrency</c> in flight, and returns the wall time from the start to the last completion.
/// </summary>
internal static class ClientDriver
{
    public static async Task<TimeSpan> RunAsync(
        IReadOnlyList<BenchRequest> requests,
        IReadOnlyList<RequestTrace> traces,
        int concurrency,
        Func<BenchRequest, RequestTrace, Task> issue,
        Action<int>? completed,
        CancellationToken cancellation)
    {
        using var slots = new SemaphoreSlim(concurrency);
        long start = Stopwatch.GetTimestamp();
        var running = new List<Task>(requests.Count);
        int done = 0;
        foreach (var request in requests)
        {
            // The arrival schedule is part of the workload, so waiting for it is the point here.
            var wait = request.ArrivalOffset - Stopwatch.GetElapsedTime(start);
            if (wait > TimeSpan.Zero) await Task.Delay(wait, cancellation);
            await slots.WaitAsync(cancellation);
            var trace = traces[request.Index];
            trace.IssuedAt = Stopwatch.GetTimestamp();
            running.Add(RunOneAsync(request, trace));
        }
        await Task.WhenAll(running);
        return Stopwatch.GetElapsedTime(start);

        async Task RunOneAsync(BenchRequest request, RequestTrace trace)
        {
            try { await issue(request, trace); }
            finally
            {
                slots.Release();
                completed?.Invoke(Interlocked.Increment(ref done));
            }
        }
    }
}
