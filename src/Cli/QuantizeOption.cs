using System.CommandLine;
using Pipeline.Inference.Onnx;

namespace Pipeline.Cli;

/// <summary><c>--quantize none|q8|q4</c>, shared by generate, serve and bench.</summary>
internal static class QuantizeOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--quantize")
        {
            Description = "weight-only quantization when the model is converted: none, q8 (8-bit, blocks of 32) q4 (4-bit grid, run by the 8-bit kernel), or f16 (float16 weights and projection inputs, float32 accumulation: for CUDA)",
            DefaultValueFactory = _ => "none",
        };
        option.AcceptOnlyFromAmong("none", "q8", "q4", "f16");
        return option;
    }

    public static WeightQuantization Parse(string? value) => value switch
    {
        null or "none" => WeightQuantization.None,
        "q8" => WeightQuantization.Q8,
        "q4" => WeightQuantization.Q4,
        "f16" => WeightQuantization.F16,
        _ => throw new ArgumentException($"unknown --quantize '{value}' (none, q8, q4, f16)"),
    };
}
