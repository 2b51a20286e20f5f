namespace Pipeline.Actors.Supervision;

/// <summary>The actors of one pipeline, as a fault names them.</summary>
internal enum ActorName
{
    Tokenize,
    Prefill,
    Sample,
    Decode,
    Detokenize,
}
