using Pipeline.Inference.Runtime;
using Pipeline.Testing;

namespace Pipeline.Integration;

/// <summary>The CPU's default threads: two below 256 MB of weights, every core above, spinning whenever there are several (docs/PERFORMANCE.md, "Session 18", "Session 22").</summary>
public sealed class IntraOpThreadsTests
{
    [Fact]
    public void A_small_model_gets_two_threads_by_default_and_its_workers_spin()
    {
        var (onnx, _, _) = LoadedModel.Resolve(RepoPaths.ModelDir);
        int threads = DecoderModel.IntraOpThreadsFor(0, onnx);
        Assert.Equal(Math.Min(2, Environment.ProcessorCount), threads);
        Assert.Equal(threads > 1, DecoderModel.Spins(new RunnerOptions(), threads, new FileInfo(onnx).Length));
        Assert.True(DecoderModel.Spins(new RunnerOptions(), 2, DecoderModel.ParallelWeightBytes - 1));
    }

    [Fact]
    public void One_thread_sleeps_several_spin_whatever_the_model_and_an_explicit_choice_wins_either_way()
    {
        Assert.False(DecoderModel.Spins(new RunnerOptions(), 1, 1));
        Assert.True(DecoderModel.Spins(new RunnerOptions(), 16, DecoderModel.ParallelWeightBytes));
        Assert.False(DecoderModel.Spins(new RunnerOptions { IntraOpSpinning = false }, 2, 1));
        Assert.True(DecoderModel.Spins(new RunnerOptions { IntraOpSpinning = true }, 1, DecoderModel.ParallelWeightBytes));
        var (onnx, _, _) = LoadedModel.Resolve(RepoPaths.ModelDir);
        Assert.Equal(3, DecoderModel.IntraOpThreadsFor(3, onnx));
    }
}
