namespace Pipeline.Actors.Supervision;

/// <summary>
/// An actor threw outside its own filters (out of memory, a sink that throws, a bug): which
/// actor, what it threw, and the requests it held at that moment (they fail with this error;
/// every other request in flight fails as aborted).
/// </summary>
internal sealed record ActorFault(ActorName Actor, Exception Error, IReadOnlySet<long> Held)
{
    /// <summary>One line for logs, /health and the errors callers see.</summary>
    public string Reason => $"the {Actor.ToString().ToLowerInvariant()} actor failed ({Error.GetType().Name}: {Error.Message})";
}
