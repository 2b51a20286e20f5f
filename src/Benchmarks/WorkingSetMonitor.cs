namespace Pipeline.Benchmarks;

/// <summary>
/// Samples the process working set every few milliseconds while a run goes on and keeps the
/// highest value. Process-wide: the model's weights and the runtime count too.
/// </summary>
internal sealed class WorkingSetMonitor : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;
    private long _peakBytes = Environment.WorkingSet;

    public WorkingSetMonitor(TimeSpan interval)
    {
        _sampling = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval);
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token)) Sample();
            }
            catch (OperationCanceledException) { }
        });
    }

    public long PeakBytes => Interlocked.Read(ref _peakBytes);

    private void Sample()
    {
        long now = Environment.WorkingSet;
        if (now > Interlocked.Read(ref _peakBytes)) Interlocked.Exchange(ref _peakBytes, now);
    }

    /// <summary>Stops sampling after one last sample; safe to call more than once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        await _sampling;
        Sample();
    }
}
