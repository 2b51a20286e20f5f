using System.CommandLine;

namespace Pipeline.Cli;

/// <summary><c>--resident-kv on|off</c>, shared by generate, serve and bench.</summary>
internal static class ResidentKvOption
{
    public static Option<string?> Create() => new("--resident-kv")
    {
        Description = "decode calls read each sequence's past where the model runs (GPU memory on CUDA), writing only new positions: "
            + "on, or off (every call copies the padded pasts in). Default: on for CUDA with fixed batch shapes, off on the CPU",
    };

    /// <summary>Null (the provider's default) when the option is absent.</summary>
    public static bool? Parse(string? value) => OnOff.Parse("--resident-kv", value);
}
