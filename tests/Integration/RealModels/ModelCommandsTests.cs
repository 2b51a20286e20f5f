using System.Text.Json;

namespace Pipeline.Integration.RealModels;

/// <summary>The real `pipeline` executable's commands for real model files: inspect, tokenize, chat-template, and token-id prompts.</summary>
public sealed class ModelCommandsTests
{
    private static string Fixtures => Path.Combine(RepoPaths.Root, "tests", "fixtures");
    private static string StoriesGguf => Path.Combine(Fixtures, "models", "stories260k", "stories260K-f32.gguf");

    [Fact]
    public async Task Inspect_describes_a_gguf_file_from_its_metadata()
    {
        var (code, stdout, stderr) = await CliTests.Run("", "inspect", StoriesGguf, "--format", "json");

        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("Gguf", json.GetProperty("format").GetString());
        Assert.Equal("llama", json.GetProperty("architecture").GetString());
        Assert.Equal(5, json.GetProperty("layers").GetInt32());
        Assert.Equal(4, json.GetProperty("kv_heads").GetInt32());
        Assert.Equal(512, json.GetProperty("vocab").GetInt32());
        Assert.Equal("GGUF llama", json.GetProperty("tokenizer").GetString());
        Assert.Equal([2], json.GetProperty("end_token_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(["F32"], json.GetProperty("dtypes").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Inspect_of_a_hugging_face_folder_names_architecture_dtype_context_cap_and_end_ids()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"pipeline-inspect-{Guid.NewGuid():N}");
        try
        {
            TinyModelFiles.WriteHuggingFace(new TinyModel(new TinySpec { Architecture = "Qwen3ForCausalLM", MaxPositions = 4096 }), folder, dtype: "BF16", shards: 2, eos: [5, 9]);

            var (code, stdout, stderr) = await CliTests.Run("", "inspect", folder, "--context", "1024", "--format", "json");

            Assert.True(code == 0, stderr);
            var json = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal("HuggingFace", json.GetProperty("format").GetString());
            Assert.Equal("qwen3", json.GetProperty("architecture").GetString());
            Assert.Equal(["BF16"], json.GetProperty("dtypes").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(1024, json.GetProperty("context").GetInt32());
            Assert.Equal(4096, json.GetProperty("max_context").GetInt32());
            Assert.Equal([5, 9], json.GetProperty("end_token_ids").EnumerateArray().Select(e => e.GetInt32()));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Tokenize_answers_each_line_with_the_reference_ids_in_order()
    {
        var cases = File.ReadLines(Path.Combine(Fixtures, "tokenizers", "public-ids.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("tokenizer").GetString() == "qwen3")
            .Take(12).ToList();
        var stdin = string.Concat(cases.Select((c, i) => JsonSerializer.Serialize(new { text = c.GetProperty("text").GetString(), add_special = i % 2 == 1 }) + "\n"));

        var (code, stdout, stderr) = await CliTests.Run(stdin, "tokenize", "--model", Path.Combine(Fixtures, "tokenizers", "qwen3"), "-");

        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(cases.Count, lines.Length);
        for (int i = 0; i < cases.Count; i++)
        {
            var expected = cases[i].GetProperty(i % 2 == 1 ? "ids_with_special" : "ids").EnumerateArray().Select(e => e.GetInt32());
            Assert.Equal(expected, JsonDocument.Parse(lines[i]).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        }
    }

    [Fact]
    public async Task Tokenize_reads_a_gguf_files_own_vocabulary()
    {
        var (code, stdout, stderr) = await CliTests.Run("{\"text\": \"Once upon a time\", \"add_special\": true}\n", "tokenize", "--model", StoriesGguf, "-");

        Assert.True(code == 0, stderr);
        Assert.Equal(Workloads.Reference[0].PromptIds, JsonDocument.Parse(stdout).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public async Task Chat_template_renders_the_reference_for_a_model_folder_and_for_a_template_file()
    {
        var chats = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "chat-templates", "public-chats.json"))).RootElement;
        var renders = File.ReadLines(Path.Combine(Fixtures, "chat-templates", "public-renders.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        string Expected(string template, int chat) => renders.Single(r => r.GetProperty("template").GetString() == template && r.GetProperty("chat").GetInt32() == chat).GetProperty("rendered").GetString()!;
        var stdin = string.Concat(chats.EnumerateArray().Select(c => c.GetRawText().ReplaceLineEndings("") + "\n"));

        var (modelCode, modelOut, modelErr) = await CliTests.Run(stdin, "chat-template", "--model", Path.Combine(Fixtures, "tokenizers", "llama3"), "-");
        var (fileCode, fileOut, fileErr) = await CliTests.Run(stdin, "chat-template", "--template", Path.Combine(Fixtures, "chat-templates", "Qwen-Qwen2.5-7B-Instruct.jinja"), "-");

        Assert.True(modelCode == 0, modelErr);
        Assert.True(fileCode == 0, fileErr);
        var modelLines = modelOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var fileLines = fileOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int chat = 0; chat < 2; chat++)
        {
            // The model folder renders with its own bos/eos texts; Qwen 2.5's template writes none.
            Assert.Equal(Expected("llama3-tokenizer_config", chat), JsonDocument.Parse(modelLines[chat]).RootElement.GetProperty("rendered").GetString());
            Assert.Equal(Expected("Qwen-Qwen2.5-7B-Instruct.jinja", chat), JsonDocument.Parse(fileLines[chat]).RootElement.GetProperty("rendered").GetString());
        }
    }

    [Fact]
    public async Task Chat_template_answers_a_raising_template_with_an_error_line()
    {
        var line = "{\"messages\": [{\"role\": \"system\", \"content\": \"x\"}, {\"role\": \"user\", \"content\": \"y\"}], \"add_generation_prompt\": true}\n";

        var (code, stdout, _) = await CliTests.Run(line, "chat-template", "--template", Path.Combine(Fixtures, "chat-templates", "google-gemma-2-2b-it.jinja"), "-");

        Assert.NotEqual(0, code);
        Assert.Contains("System role not supported", JsonDocument.Parse(stdout).RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batch_mode_continues_prompt_ids_as_given()
    {
        var reference = Workloads.Reference[1];
        var line = JsonSerializer.Serialize(new { id = "ids", prompt_ids = reference.PromptIds, max_tokens = 16 }) + "\n";

        var (code, stdout, stderr) = await CliTests.Run(line, "generate", "-");

        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(reference.PromptIds, json.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(reference.GreedyIds.Take(16), json.GetProperty("completion_ids").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public async Task Generate_runs_the_gguf_file_to_the_reference_greedy_ids()
    {
        var reference = Workloads.Reference[0];

        // llama.cpp's converter states a context of 128 positions; --context 512 extends it as llama.cpp's -c does.
        int steps = reference.GreedyIds.Length;
        var (code, stdout, stderr) = await CliTests.Run("", "generate", "--model", StoriesGguf, "--context", "512", "--prompt", reference.Prompt, "--max-tokens", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--format", "json");

        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(reference.PromptIds, json.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(reference.GreedyIds, json.GetProperty("completion_ids").EnumerateArray().Select(e => e.GetInt32()).Take(steps));
    }
}
