using System.CommandLine;

namespace Pipeline.Cli;

/// <summary><c>--spin on|off</c>, shared by generate, serve and bench.</summary>
internal static class SpinOption
{
    public static Option<string?> Create() => new("--spin")
    {
        Description = "ONNX Runtime's intra-op workers spin between parallel sections (on) or sleep (off). Default: on with more than one intra-op thread",
    };

    /// <summary>Null (on with more than one thread) when the option is absent.</summary>
    public static bool? Parse(string? value) => OnOff.Parse("--spin", value);
}
