using System.CommandLine;
using Pipeline.Cli;

var root = new RootCommand("pipeline: concurrent LLM inference on one loaded model (ONNX Runtime)");
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(ChatTemplateCommand.Create());

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    Console.Error.WriteLine($"error: {parse.Errors[0].Message}");
    return 2;
}
return await parse.InvokeAsync();
