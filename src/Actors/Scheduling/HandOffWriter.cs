using System.Threading.Channels;

namespace Pipeline.Actors.Scheduling;

/// <summary>
/// A channel's writing end with the scheduling hook installed: every message written through it
/// first passes <see cref="ISchedulingHook.BeforeHandOffAsync"/> once per request it carries.
/// The wiring wraps every channel in one, so the actors never call the hook themselves; with
/// <see cref="NoSchedulingHook"/> (production) the wiring does not wrap at all.
/// </summary>
internal sealed class HandOffWriter<T>(ChannelWriter<T> inner, ISchedulingHook hook, HandOff point, Func<T, IEnumerable<long>> requestIds)
    : ChannelWriter<T>
{
    /// <summary>
    /// For a hand-off that must not block (<see cref="TryWrite"/>): lets the hook act on
    /// <paramref name="item"/> before the writer starts offering it.
    /// </summary>
    public async ValueTask AnnounceAsync(T item)
    {
        foreach (long id in requestIds(item)) await hook.BeforeHandOffAsync(point, id);
    }

    public override async ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        await AnnounceAsync(item);
        await inner.WriteAsync(item, cancellationToken);
    }

    public override bool TryWrite(T item) => inner.TryWrite(item);

    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => inner.WaitToWriteAsync(cancellationToken);

    public override bool TryComplete(Exception? error = null) => inner.TryComplete(error);
}

/// <summary>Announcing a non-blocking hand-off: through the hook when the writer has one, else nothing to do.</summary>
internal static class HandOffAnnouncement
{
    public static ValueTask AnnounceAsync<T>(this ChannelWriter<T> writer, T item) =>
        writer is HandOffWriter<T> hooked ? hooked.AnnounceAsync(item) : ValueTask.CompletedTask;
}
