using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Cli;

/// <summary>
/// <c>pipeline tokenize --model PATH -</c>: one JSON line in (<c>{"text": "...", "add_special": false}</c>),
/// one line out (<c>{"ids": [...]}</c>, or <c>{"error": "..."}</c>), in order. A folder holding only
/// tokenizer files is enough; the weights are never read.
/// </summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "'-' to read JSON lines from stdin" };
        var model = ModelOptions.Model();
        var command = new Command("tokenize", "encode texts with a model's tokenizer (JSON lines on stdin)") { input, model };
        command.SetAction((parse, ct) => CliErrors.Guard(async () =>
        {
            if (parse.GetValue(input) != "-") throw new ArgumentException("use '-' to read JSON lines from stdin");
            var tokenizer = Load(parse.GetValue(model) ?? LoadedModel.EmbeddedModelDirectory);
            return await JsonLinesLoop.RunAsync(line =>
            {
                var result = new JsonObject();
                try
                {
                    var request = JsonNode.Parse(line) as JsonObject ?? throw new FormatException("each line must be a JSON object");
                    string text = request["text"]?.GetValue<string>() ?? throw new FormatException("missing \"text\"");
                    bool addSpecial = request["add_special"]?.GetValue<bool>() ?? false;
                    result["ids"] = new JsonArray(tokenizer.Encode(text, addSpecial).Select(i => (JsonNode)i).ToArray());
                    return (result.ToJsonString(), false);
                }
                catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
                {
                    result["error"] = e.Message;
                    return (result.ToJsonString(), true);
                }
            }, ct);
        }));
        return command;
    }

    /// <summary>A llama2.c tokenizer file, a tokenizer.json folder, or a GGUF file's own tokenizer.</summary>
    internal static ITokenizer Load(string path)
    {
        LoadedModel.RequireFolder(path);
        if (Directory.Exists(path) && !File.Exists(Path.Combine(path, "tokenizer.json")) && LoadedModel.FindTokenizer(path) is { } bin)
            return Tokenizer.Load(bin);
        return TokenizerSource.Load(path).Tokenizer;
    }
}
