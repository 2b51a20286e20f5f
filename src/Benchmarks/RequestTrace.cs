using System.Diagnostics;

namespace Pipeline.Benchmarks;

/// <summary>
/// What a client saw of one request: when it was issued, when each token arrived, and the ids.
/// Written by the one task that runs the request, read after the run ends.
/// </summary>
internal sealed class RequestTrace(int requestIndex)
{
    public int RequestIndex { get; } = requestIndex;
    /// <summary>Stopwatch timestamp when the client issued the request (a concurrency slot was free).</summary>
    public long IssuedAt { get; set; }
    /// <summary>Stopwatch timestamp of each generated token, in order. [CompletionIds.Count]</summary>
    public List<long> TokenTimes { get; } = [];
    public List<int> CompletionIds { get; } = [];

    public void TokenArrived(int tokenId)
    {
        TokenTimes.Add(Stopwatch.GetTimestamp());
        CompletionIds.Add(tokenId);
    }
}
