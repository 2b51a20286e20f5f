using System.Net;
using System.Text;
using System.Text.Json;

namespace Pipeline.Integration.Server;

/// <summary>/v1/completions takes token ids and lists of prompts, as the OpenAI API allows.</summary>
public sealed class TokenIdPromptTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Completion_of_token_ids_continues_exactly_those_ids()
    {
        var reference = Workloads.Reference[0];

        var body = await PostAsync(new { prompt = reference.PromptIds, max_tokens = 8, temperature = 0 });

        var solo = await fixture.SoloHost.CompleteAsync(new GenerationRequest { PromptIds = reference.PromptIds, MaxTokens = 8, Sampling = new() { Temperature = 0 } });
        Assert.Equal(solo.Text, body.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(reference.GreedyIds.Take(8), solo.CompletionIds);
        Assert.Equal(reference.PromptIds.Length, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Completion_of_several_prompts_answers_each_prompt_n_times_in_prompt_order()
    {
        var texts = await PostAsync(new { prompt = new[] { "Lily went", "Tom" }, n = 2, max_tokens = 6, temperature = 0.8, seed = 9 });
        for (int i = 0; i < 4; i++)
        {
            var solo = await fixture.SoloHost.CompleteAsync(new GenerationRequest { Prompt = i < 2 ? "Lily went" : "Tom", MaxTokens = 6, Seed = 9UL + (ulong)i, Sampling = new() { Temperature = 0.8f } });
            Assert.Equal(solo.Text, texts.GetProperty("choices")[i].GetProperty("text").GetString());
        }
    }

    [Fact]
    public async Task Completion_of_several_token_id_prompts_answers_each_prompt_n_times_in_prompt_order()
    {
        var prompts = new[] { new[] { 1, 403, 407 }, new[] { 1, 274, 287 } };

        var body = await PostAsync(new { prompt = prompts, n = 2, max_tokens = 6, temperature = 0.8, seed = 50 });

        var choices = body.GetProperty("choices");
        Assert.Equal(4, choices.GetArrayLength());
        for (int i = 0; i < 4; i++)
        {
            var prompt = new GenerationRequest { PromptIds = prompts[i / 2] };
            var solo = await fixture.SoloHost.CompleteAsync(prompt with { MaxTokens = 6, Seed = 50UL + (ulong)i, Sampling = new() { Temperature = 0.8f } });
            Assert.Equal(i, choices[i].GetProperty("index").GetInt32());
            Assert.Equal(solo.Text, choices[i].GetProperty("text").GetString());
        }
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("[1, -2]")]
    [InlineData("[1, \"a\"]")]
    [InlineData("[[1], []]")]
    [InlineData("[1, 100000]")]
    public async Task Completion_with_malformed_token_ids_answers_400_naming_the_prompt(string prompt)
    {
        using var response = await fixture.Http.PostAsync("/v1/completions", new StringContent($"{{\"prompt\": {prompt}, \"max_tokens\": 2}}", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("prompt", error.GetProperty("param").GetString());
    }

    private async Task<JsonElement> PostAsync(object body)
    {
        using var response = await fixture.Http.PostAsync("/v1/completions", new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement;
    }
}
