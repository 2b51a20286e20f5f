using System.CommandLine;
using Pipeline.Inference.Onnx;

namespace Pipeline.Cli;

/// <summary><c>--attention blocks|group-query</c>, shared by generate, serve and bench.</summary>
internal static class AttentionOption
{
    public static Option<string?> Create() => new("--attention")
    {
        Description = "how the converted graph attends: group-query (ONNX Runtime's GroupQueryAttention, one node per layer; the CPU default) "
            + "or blocks (standard operators over key blocks; what fixed batch shapes and resident pasts use on the CPU). With --cuda prefill "
            + "always uses blocks, and this picks how resident decode calls attend: group-query (float16, with --quantize f16: the default there) or blocks",
    };

    /// <summary>Null (by provider and shapes) when the option is absent.</summary>
    public static AttentionKernel? Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null => null,
        "group-query" or "groupquery" or "gqa" => AttentionKernel.GroupQuery,
        "blocks" or "block" => AttentionKernel.Blocks,
        var other => throw new ArgumentException($"--attention: '{other}' is not blocks or group-query"),
    };
}
