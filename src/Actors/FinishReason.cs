namespace Pipeline.Actors;

public enum FinishReason
{
    /// <summary>An end token or a stop string.</summary>
    Stop,
    /// <summary>max_tokens reached, or the context is full.</summary>
    Length,
    Cancelled,
}
