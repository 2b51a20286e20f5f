namespace Pipeline.Inference.Runtime;

/// <summary>One row of a model call: a sequence's cache and the tokens it feeds at this step.</summary>
internal readonly record struct SequenceStep(KvCache Cache, ReadOnlyMemory<int> Tokens);
