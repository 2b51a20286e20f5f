using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Inference.Models.Sources;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Cli;

/// <summary>
/// <c>pipeline inspect PATH</c>: what the loader finds at a model path (format, architecture,
/// parameters, dtypes, context, tokenizer, chat template, end tokens), read from headers and small
/// files only: nothing is converted and no weights are read.
/// </summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string?>("path") { Description = "model path (default: the embedded stories260K)", Arity = ArgumentArity.ZeroOrOne };
        var context = ModelOptions.Context();
        var format = new Option<string>("--format") { Description = "text or json", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");
        var command = new Command("inspect", "describe a model path without loading it") { path, context, format };
        command.SetAction((parse, _) => CliErrors.Guard(() =>
        {
            var target = parse.GetValue(path) ?? LoadedModel.EmbeddedModelDirectory;
            LoadedModel.RequireFolder(target);
            var source = ModelSource.Detect(target);
            var info = source.Inspect(parse.GetValue(context));
            var endIds = EndIds(source, info);
            var c = info.Config;
            var json = new JsonObject
            {
                ["path"] = info.Path,
                ["format"] = info.Format.ToString(),
                ["architecture"] = info.Architecture,
                ["parameters"] = info.ParameterCount,
                ["dtypes"] = new JsonArray(info.DTypes.Select(d => (JsonNode)d).ToArray()),
                ["context"] = info.ContextLength,
                ["max_context"] = info.MaxContextLength,
                ["dim"] = c.Dim,
                ["layers"] = c.Layers,
                ["heads"] = c.Heads,
                ["kv_heads"] = c.KvHeads,
                ["head_dim"] = c.HeadDim,
                ["hidden_dim"] = c.HiddenDim,
                ["vocab"] = c.VocabSize,
                ["tied_embeddings"] = c.SharedClassifier,
                ["tokenizer"] = info.TokenizerKind,
                ["chat_template"] = info.HasChatTemplate,
                ["end_token_ids"] = new JsonArray(endIds.Select(i => (JsonNode)i).ToArray()),
            };
            if (parse.GetValue(format) == "json")
            {
                Console.WriteLine(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return Task.FromResult(0);
            }
            foreach (var (key, value) in json)
                Console.WriteLine($"{key,-16} {(value is JsonArray a ? string.Join(", ", a.Select(v => v?.ToString())) : value?.ToString())}");
            return Task.FromResult(0);
        }));
        return command;
    }

    /// <summary>The configuration's end ids and the tokenizer's own, as generation will use them.</summary>
    private static List<int> EndIds(ModelSource source, ModelInspection info)
    {
        var ids = new List<int>(info.EndTokenIds);
        try
        {
            var tokenizer = LoadedModel.FindTokenizer(source.Directory) is { } bin
                ? (ITokenizer)Tokenizer.Load(bin)
                : TokenizerSource.Load(source.Format == ModelFormat.Gguf ? source.ModelPath : source.Directory).Tokenizer;
            foreach (int id in tokenizer.EndIds)
                if (!ids.Contains(id)) ids.Add(id);
        }
        catch (FileNotFoundException)
        {
            // No tokenizer: inspect still describes the weights ("tokenizer: none").
        }
        return ids;
    }
}
