namespace Pipeline;

/// <summary>
/// The host cannot take or finish this request: it is draining or stopping, or its pipeline
/// faulted (an actor threw outside its filters). Unlike <see cref="PipelineBusyException"/>, waiting
/// a moment does not help by itself; the server answers 503 with this message.
/// </summary>
public sealed class PipelineUnavailableException : InvalidOperationException
{
    public PipelineUnavailableException() : this("the pipeline is unavailable") { }

    public PipelineUnavailableException(string message) : base(message) { }

    public PipelineUnavailableException(string message, Exception innerException) : base(message, innerException) { }
}
