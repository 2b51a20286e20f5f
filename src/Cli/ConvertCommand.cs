using System.CommandLine;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Cli;

/// <summary>
/// <c>pipeline convert</c>: writes any model path's ONNX graph (Optimum layout, external data
/// beside it past the protobuf limit) and its tokenizer files to another folder.
/// </summary>
internal static class ConvertCommand
{
    // Files that describe a model's tokenizer and chat template, copied beside the graph so the
    // folder is a complete model again.
    private static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja", "chat_template.json"];

    public static Command Create()
    {
        var model = ModelOptions.Model();
        var context = ModelOptions.Context();
        var output = new Option<string>("--output", "-o") { Description = "folder to write model.onnx and the tokenizer into", Required = true };
        var command = new Command("convert", "convert a model (Hugging Face, GGUF, llama2.c) into an ONNX decoder (Optimum layout)") { model, context, output };
        command.SetAction((parse, _) => CliErrors.Guard(() =>
        {
            var path = parse.GetValue(model) ?? LoadedModel.EmbeddedModelDirectory;
            var target = parse.GetValue(output)!;
            LoadedModel.RequireFolder(path);
            var source = ModelSource.Detect(path);
            if (source.Format == ModelFormat.Onnx) throw new ArgumentException($"'{path}' is already an ONNX model");
            Directory.CreateDirectory(target);
            var onnx = Path.Combine(target, "model.onnx");
            var external = LlamaOnnxExporter.Write(source, onnx, parse.GetValue(context));
            if (LoadedModel.FindTokenizer(source.Directory) is { } bin)
                File.Copy(bin, Path.Combine(target, "tokenizer.bin"), overwrite: true);
            foreach (var name in TokenizerFiles)
                if (File.Exists(Path.Combine(source.Directory, name)))
                    File.Copy(Path.Combine(source.Directory, name), Path.Combine(target, name), overwrite: true);
            if (source.Format == ModelFormat.Gguf && !File.Exists(Path.Combine(target, "tokenizer.json")))
                Console.Error.WriteLine("note: a GGUF's tokenizer lives in the GGUF file; keep it beside model.onnx to run the converted folder");
            Console.WriteLine($"wrote {onnx} ({new FileInfo(onnx).Length / 1024} KiB{(external is null ? "" : $", weights in {Path.GetFileName(external)}")}) from {source.Format} {source.Name}");
            return Task.FromResult(0);
        }));
        return command;
    }
}
