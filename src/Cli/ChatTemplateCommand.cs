using System.CommandLine;
using Pipeline.Inference.Chat;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Cli;

/// <summary>
/// <c>pipeline chat-template (--model PATH | --template FILE.jinja) -</c>: one JSON line in
/// (<c>{"messages": [...], "add_generation_prompt": true, "bos_token": ..., "eos_token": ...}</c>, the
/// tokens defaulting to the model's), one line out (<c>{"rendered": "..."}</c> or <c>{"error": "..."}</c>).
/// </summary>
internal static class ChatTemplateCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "'-' to read JSON lines from stdin" };
        var model = ModelOptions.Model();
        var templateFile = new Option<string?>("--template") { Description = "a Jinja chat template file instead of a model's" };
        var command = new Command("chat-template", "render conversations with a chat template (JSON lines on stdin)") { input, model, templateFile };
        command.SetAction((parse, ct) => CliErrors.Guard(async () =>
        {
            if (parse.GetValue(input) != "-") throw new ArgumentException("use '-' to read JSON lines from stdin");
            var (template, bos, eos) = Load(parse.GetValue(model), parse.GetValue(templateFile));
            return await JsonLinesLoop.RunAsync(line =>
            {
                var output = ChatTemplateJsonLine.Render(template, line, bos, eos);
                return (output, output.StartsWith("{\"error\"", StringComparison.Ordinal));
            }, ct);
        }));
        return command;
    }

    private static (ChatTemplate Template, string? Bos, string? Eos) Load(string? model, string? templateFile)
    {
        if (model is not null && templateFile is not null) throw new ArgumentException("give --model or --template, not both");
        if (templateFile is not null)
        {
            if (!File.Exists(templateFile)) throw new FileNotFoundException($"template file '{templateFile}' does not exist");
            return (Parse(File.ReadAllText(templateFile), templateFile), null, null);
        }
        var path = model ?? throw new ArgumentException("give --model PATH or --template FILE.jinja");
        LoadedModel.RequireFolder(path);
        string folder = File.Exists(path) ? Path.GetDirectoryName(Path.GetFullPath(path))! : path;
        var config = ChatTemplateConfig.LoadFolder(folder);
        string? source = config.Select(hasTools: false);
        string? bos = config.BosToken, eos = config.EosToken;
        if (source is null)
        {
            // A GGUF carries its template and token texts in its metadata.
            string? gguf = File.Exists(path) && path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? path
                : Directory.Exists(path) && ModelSource.Detect(path) is { Format: ModelFormat.Gguf } detected ? detected.ModelPath : null;
            if (gguf is not null)
            {
                var tokenizer = TokenizerSource.Load(gguf);
                source = tokenizer.ChatTemplate;
                bos ??= tokenizer.BosToken;
                eos ??= tokenizer.EosToken;
            }
        }
        if (source is null) throw new InvalidDataException($"model '{path}' has no chat template");
        return (Parse(source, path), bos, eos);
    }

    private static ChatTemplate Parse(string source, string origin)
    {
        try
        {
            return ChatTemplate.Parse(source);
        }
        catch (ChatTemplateException e)
        {
            throw new InvalidDataException($"{origin}: the chat template does not parse: {e.Message}", e);
        }
    }
}
