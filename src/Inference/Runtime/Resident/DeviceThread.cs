using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Pipeline.Inference.Runtime.Resident;

/// <summary>
/// The one thread that makes a model's resident decode calls when they are replayed as CUDA graphs.
/// ONNX Runtime keeps a captured graph in the capturing thread's context, so calls made from
/// whichever pool thread an actor's continuation lands on would each capture their own copy (and
/// capture again on every new thread); here every call runs on this thread, one at a time, in order.
/// A caller blocks until its call is done, as it would calling the model directly.
/// </summary>
internal sealed class DeviceThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    public DeviceThread(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Whether the calling thread is this one.</summary>
    public bool IsCurrent => Thread.CurrentThread == _thread;

    /// <summary>Runs <paramref name="action"/> on the device thread and waits for it; its exception is rethrown here.</summary>
    public void Invoke(Action action)
    {
        if (Thread.CurrentThread == _thread)
        {
            action();
            return;
        }
        using var done = new ManualResetEventSlim();
        ExceptionDispatchInfo? error = null;
        _work.Add(() =>
        {
            try { action(); }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
            finally { done.Set(); }
        });
        done.Wait();
        error?.Throw();
    }

    private void Loop()
    {
        foreach (var action in _work.GetConsumingEnumerable()) action();
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join();
        _work.Dispose();
    }
}
