namespace Pipeline;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>An end token or a stop string.</summary>
    Stop,
    /// <summary>max_tokens reached, or the context is full.</summary>
    Length,
    /// <summary>The caller cancelled, or the host shut down.</summary>
    Cancelled,
}
