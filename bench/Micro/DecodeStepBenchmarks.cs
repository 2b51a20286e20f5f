using BenchmarkDotNet.Attributes;

namespace Pipeline.Benchmarks.Micro;

/// <summary>One decode step (one model call, one new token per row) on stories260K at context 32, by batch.</summary>
[InvocationCount(DecodeStepFixture.InvocationsPerIteration)]
public class DecodeStepBenchmarks
{
    private DecodeStepFixture _fixture = null!;

    [Params(1, 8, 32)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup() => _fixture = new DecodeStepFixture("260k", Batch, context: 32);

    [IterationSetup]
    public void Restore() => _fixture.Restore();

    [Benchmark]
    public float DecodeStep() => _fixture.Step();

    [GlobalCleanup]
    public void Cleanup() => _fixture.Dispose();
}
