namespace Pipeline.Actors;

/// <summary>
/// Where the actors report one request's progress. Implementations must not block: they are
/// called from actor loops.
/// </summary>
public interface IRequestSink
{
    void Tokenized(IReadOnlyList<int> promptIds);
    void Token(TokenOutput token);
    void Finished(SequenceOutcome outcome);
    void Failed(Exception exception);
}
