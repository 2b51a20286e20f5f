using Pipeline.Actors.Admission;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties.Scheduling;

/// <summary>
/// What the checker drives: the real pipeline, or a deliberately broken variant built on the same
/// seams, to show that the checker catches what it claims to catch.
/// </summary>
internal interface IGenerationSystem : IAsyncDisposable
{
    RequestHandle Submit(GenerationRequest request, CancellationToken cancellation);
    KvMemoryAccount KvMemory { get; }
    KvBudget KvBudget { get; }
}

/// <summary>The product: one <see cref="PipelineHost"/>.</summary>
internal sealed class RealPipeline(PipelineHost host) : IGenerationSystem
{
    RequestHandle IGenerationSystem.Submit(GenerationRequest request, CancellationToken cancellation) => host.Submit(request, cancellation);
    public KvMemoryAccount KvMemory => host.KvMemory;
    public KvBudget KvBudget => host.KvBudget;
    public ValueTask DisposeAsync() => host.DisposeAsync();
}

/// <summary>
/// The classic bug: requests draw their randomness from one generator shared by the whole server,
/// in the order they happen to arrive. Alone, a request always gets the generator's first draw;
/// beside others, whatever the interleaving leaves it.
/// </summary>
internal sealed class SharedGeneratorPipeline(PipelineHost host) : IGenerationSystem
{
    private long _draws;

    RequestHandle IGenerationSystem.Submit(GenerationRequest request, CancellationToken cancellation)
    {
        ulong shared = 0x5EED + (ulong)Interlocked.Increment(ref _draws) * 0x9E3779B97F4A7C15UL;
        return host.Submit(request with { Seed = (request.Seed ?? 0) ^ shared }, cancellation);
    }

    public KvMemoryAccount KvMemory => host.KvMemory;
    public KvBudget KvBudget => host.KvBudget;
    public ValueTask DisposeAsync() => host.DisposeAsync();
}
