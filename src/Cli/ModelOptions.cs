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
        Description = "context in positions per sequence: caps the model's (bounding KV memory); for GGUF and llama2.c files it may also extend the stated one, as llama.cpp's -c",
    };
}
