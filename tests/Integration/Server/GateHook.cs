using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;

namespace Pipeline.Integration.Server;

/// <summary>
/// A scheduling hook that, once closed at a hand-off, lets the first <c>passFirst</c> calls
/// there through and holds every later one until opened: it pins the pipeline in a known state
/// (a request mid-decode, the tokenizer busy) without timing.
/// </summary>
internal sealed class GateHook : ISchedulingHook
{
    private TaskCompletionSource _gate = Opened();
    private TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private HandOff? _point;
    private volatile bool _closed;
    private int _passFirst;
    private int _calls;

    /// <summary>Completes when the first call is held.</summary>
    public Task Held => _held.Task;

    /// <summary>Calls seen at the point named by the last <see cref="Close"/>, held or not, opened or not.</summary>
    public int Calls => Volatile.Read(ref _calls);

    public void Close(HandOff point, int passFirst)
    {
        _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _passFirst = passFirst;
        Volatile.Write(ref _calls, 0);
        _point = point;
        _closed = true;
    }

    public void Open()
    {
        _closed = false;
        _gate.TrySetResult();
    }

    public ValueTask BeforeHandOffAsync(HandOff point, long requestId)
    {
        if (point != _point || Interlocked.Increment(ref _calls) <= _passFirst || !_closed) return ValueTask.CompletedTask;
        _held.TrySetResult();
        return new ValueTask(_gate.Task);
    }

    public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready) => Enumerable.Range(0, ready.Count).ToArray();

    private static TaskCompletionSource Opened()
    {
        var opened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        opened.SetResult();
        return opened;
    }
}
