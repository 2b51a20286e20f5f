using System.Diagnostics;
using System.Text.Json;

namespace Pipeline.Integration;

/// <summary>The real `pipeline` executable, run as a user would.</summary>
public sealed class CliTests
{
    internal static string CliDll
    {
        get
        {
            // Same configuration as this test build: .../tests/Integration/bin/<Configuration>/net10.0/
            var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
            return Path.Combine(RepoPaths.Root, "src", "Cli", "bin", configuration, "net10.0", "pipeline.dll");
        }
    }

    internal static async Task<(int Code, string Out, string Err)> Run(string stdin, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(CliDll);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Generate_in_json_format_prints_the_reference_prompt_and_greedy_ids()
    {
        var reference = Workloads.Reference[0];
        var (code, stdout, stderr) = await Run("", "generate", "--prompt", reference.Prompt, "--max-tokens", "40", "--format", "json");
        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(reference.PromptIds, json.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(reference.GreedyIds.Take(40), json.GetProperty("completion_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("length", json.GetProperty("finish_reason").GetString());
        Assert.True(json.TryGetProperty("seed", out _));
        Assert.StartsWith(", there was a little girl named Lily.", json.GetProperty("text").GetString());
    }

    [Fact]
    public async Task Generate_in_text_format_prints_the_continuation()
    {
        var (code, stdout, stderr) = await Run("", "generate", "--prompt", "Once upon a time", "--max-tokens", "20");
        Assert.True(code == 0, stderr);
        Assert.StartsWith(", there was a little girl named Lily.", stdout);
    }

    [Theory]
    [InlineData("--temperature", "-1", "temperature")]
    [InlineData("--top-p", "1.5", "top_p")]
    [InlineData("--max-tokens", "0", "max_tokens")]
    [InlineData("--max-tokens", "abc", "--max-tokens")]
    [InlineData("--model", "/no/such/model", "/no/such/model")]
    [InlineData("--kv-budget", "banana", "--kv-budget")]
    [InlineData("--kv-budget", "150%", "--kv-budget")]
    [InlineData("--resident-kv", "maybe", "--resident-kv")]
    [InlineData("--resident-kv", "on", "--resident-kv needs fixed decode shapes")]
    [InlineData("--cuda-graph", "sometimes", "--cuda-graph")]
    [InlineData("--cuda-graph", "on", "--cuda-graph needs the CUDA execution provider")]
    [InlineData("--serial-prefill", "often", "--serial-prefill")]
    [InlineData("--serial-prefill", "on", "--serial-prefill needs CUDA graphs")]
    [InlineData("--quantize", "f16", "--quantize f16 is for CUDA")]
    [InlineData("--attention", "flash", "--attention")]
    [InlineData("--spin", "fast", "--spin")]
    public async Task Bad_arguments_exit_non_zero_with_one_clear_line_and_no_stack_trace(string option, string value, string named)
    {
        var (code, stdout, stderr) = await Run("", "generate", "--prompt", "Lily", option, value);
        Assert.NotEqual(0, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error:", lines[0]);
        Assert.Contains(named, lines[0]);
        Assert.DoesNotContain("   at ", stderr); // a stack frame
        Assert.Equal("", stdout.Trim());
    }

    [Fact]
    public async Task A_kv_budget_is_taken_as_a_fraction_or_a_size_and_one_too_small_for_the_request_is_a_clear_error()
    {
        var (code, stdout, stderr) = await Run("", "generate", "--prompt", "Once upon a time", "--max-tokens", "20", "--kv-budget", "25%");
        Assert.True(code == 0, stderr);
        Assert.StartsWith(", there was a little girl named Lily.", stdout);

        (code, _, stderr) = await Run("", "generate", "--prompt", "Once upon a time", "--max-tokens", "20", "--kv-budget", "1KiB");
        Assert.NotEqual(0, code);
        Assert.Contains("exceed the host's whole KV budget of 1024 bytes", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_a_clear_error()
    {
        var (code, _, stderr) = await Run("", "generate", "--prompt", string.Concat(Enumerable.Repeat("Once upon a time there was a dog. ", 80)));
        Assert.NotEqual(0, code);
        Assert.Contains("longer than the model's context", stderr);
    }

    [Fact]
    public async Task Batch_mode_answers_every_line_in_input_order_and_a_bad_line_gets_an_error_with_its_id()
    {
        var input = """
            {"id":"first","prompt":"Once upon a time","max_tokens":12,"temperature":0}
            {"id":"bad","prompt":"Lily","max_tokens":0}
            {"id":7,"prompt":"Lily","max_tokens":9,"temperature":0.8,"seed":42,"top_k":20,"top_p":0.9,"min_p":0.01,"repetition_penalty":1.1,"stop":["zzz"]}
            """;
        var (code, stdout, _) = await Run(input, "generate", "-", "--concurrency", "2");
        Assert.NotEqual(0, code); // one request failed
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(3, lines.Length);
        Assert.Equal("first", lines[0].GetProperty("id").GetString());
        Assert.Equal(Workloads.Reference[0].GreedyIds.Take(12), lines[0].GetProperty("completion_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("bad", lines[1].GetProperty("id").GetString());
        Assert.Contains("max_tokens", lines[1].GetProperty("error").GetString());
        Assert.Equal(7, lines[2].GetProperty("id").GetInt32());
        Assert.Equal(42UL, lines[2].GetProperty("seed").GetUInt64());
        Assert.Equal(9, lines[2].GetProperty("completion_ids").GetArrayLength());
    }

    [Fact]
    public async Task Convert_writes_an_onnx_model_folder_that_generate_runs_with_the_same_output()
    {
        var dir = Directory.CreateTempSubdirectory("pipeline-convert-").FullName;
        try
        {
            var (code, _, stderr) = await Run("", "convert", "--output", dir);
            Assert.True(code == 0, stderr);
            Assert.True(File.Exists(Path.Combine(dir, "model.onnx")));
            var viaFolder = await Run("", "generate", "--model", dir, "--prompt", "Lily", "--max-tokens", "15", "--format", "json");
            var embedded = await Run("", "generate", "--prompt", "Lily", "--max-tokens", "15", "--format", "json");
            Assert.Equal(
                JsonDocument.Parse(embedded.Out).RootElement.GetProperty("completion_ids").ToString(),
                JsonDocument.Parse(viaFolder.Out).RootElement.GetProperty("completion_ids").ToString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
