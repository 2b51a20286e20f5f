using System.CommandLine;
using Pipeline.Inference.Runtime;

namespace Pipeline.Cli;

/// <summary><c>pipeline convert</c>: writes a model folder's ONNX graph (and its tokenizer) to another folder.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "model folder with a llama2.c checkpoint (default: the embedded stories260K)" };
        var output = new Option<string>("--output", "-o") { Description = "folder to write model.onnx and the tokenizer into", Required = true };
        var command = new Command("convert", "convert a llama2.c checkpoint into an ONNX decoder (Optimum layout)") { model, output };
        command.SetAction((parse, _) => CliErrors.Guard(() =>
        {
            var source = parse.GetValue(model) ?? LoadedModel.EmbeddedModelDirectory;
            var target = parse.GetValue(output)!;
            var (onnx, tokenizer, name) = LoadedModel.Resolve(source);
            Directory.CreateDirectory(target);
            File.Copy(onnx, Path.Combine(target, "model.onnx"), overwrite: true);
            File.Copy(tokenizer, Path.Combine(target, "tokenizer.bin"), overwrite: true);
            Console.WriteLine($"wrote {Path.Combine(target, "model.onnx")} ({new FileInfo(onnx).Length / 1024} KiB) from {name}");
            return Task.FromResult(0);
        }));
        return command;
    }
}
