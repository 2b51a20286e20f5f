using System.CommandLine;

namespace Pipeline.Cli;

/// <summary><c>--serial-prefill on|off</c>, shared by generate, serve and bench.</summary>
internal static class SerialPrefillOption
{
    public static Option<string?> Create() => new("--serial-prefill")
    {
        Description = "with CUDA graphs, run prefill calls between resident decode calls on the GPU instead of beside them: on (the default there) or off",
    };

    /// <summary>Null (on wherever CUDA graphs are) when the option is absent.</summary>
    public static bool? Parse(string? value) => OnOff.Parse("--serial-prefill", value);
}
