namespace Pipeline.Actors;

/// <summary>
/// Where one request's progress is reported: its prompt ids (by the tokenize actor), then each
/// token and exactly one of a result or an error (by the detokenize actor). Implementations must
/// not block: they are called from actor loops.
/// </summary>
internal interface IRequestSink
{
    void Tokenized(IReadOnlyList<int> promptIds);
    void Token(TokenEvent token);
    void Finished(GenerationResult result);
    void Failed(Exception exception);
}
