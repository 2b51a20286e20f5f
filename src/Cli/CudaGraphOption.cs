using System.CommandLine;

namespace Pipeline.Cli;

/// <summary><c>--cuda-graph on|off</c>, shared by generate, serve and bench.</summary>
internal static class CudaGraphOption
{
    public static Option<string?> Create() => new("--cuda-graph")
    {
        Description = "capture each resident decode call as a CUDA graph and replay it (one launch per step instead of one per kernel): on (the default with --cuda and resident pasts) or off",
    };

    /// <summary>Null (on with resident pasts on CUDA, off elsewhere) when the option is absent.</summary>
    public static bool? Parse(string? value) => OnOff.Parse("--cuda-graph", value);
}
