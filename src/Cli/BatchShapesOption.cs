using System.CommandLine;
using Pipeline.Inference.Runtime;

namespace Pipeline.Cli;

/// <summary><c>--batch-shapes</c>, shared by generate, serve and bench.</summary>
internal static class BatchShapesOption
{
    public static Option<string?> Create() => new("--batch-shapes")
    {
        Description = "shapes model calls are padded to: exact (no padding: the CPU default, and on CUDA the invariance switched off), "
            + "cuda (the CUDA default: batch-invariant), or decode=N,small=N,prefill=N,block,context "
            + "(small: a second decode call of N rows over a resident part's first slots, where its rows' bits are the full call's)",
    };

    /// <summary>Null (the provider's default) when the option is absent.</summary>
    public static BatchShapes? Parse(string? value) => value is null ? null : BatchShapes.Parse(value, DecoderModel.CudaShapes);
}
