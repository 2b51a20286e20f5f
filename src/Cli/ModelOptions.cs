using System.CommandLine;

namespace Pipeline.Cli;

/// <summary>The options every command that loads a model shares, spelled and described once.</summary>
internal static class ModelOptions
{
    public static Option<string?> Model() => new("--model")
    {
        Description = "a Hugging Face folder, a GGUF file, a llama2.c folder or an exported model.onnx folder (default: the embedded stories260K)",
    };

    public static Option<int?> Context() => new("--context")
    {
        Description = "cap the context (positions per sequence) below the model's maximum; bounds KV memory",
    };
}
