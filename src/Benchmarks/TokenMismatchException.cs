namespace Pipeline.Benchmarks;

/// <summary>Two modes generated different tokens for the same request: no speed is worth reporting.</summary>
internal sealed class TokenMismatchException(string message) : InvalidOperationException(message);
