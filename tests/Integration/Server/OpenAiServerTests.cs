using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI.Chat;

namespace Pipeline.Integration.Server;

/// <summary>The real server driven by the official OpenAI .NET client (and plain HTTP where the SDK has no method, e.g. legacy completions).</summary>
public sealed class OpenAiServerTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private string ModelName => fixture.Model.Name;

#pragma warning disable OPENAI001 // ChatCompletionOptions.Seed is marked experimental by the SDK.
    private static ChatCompletionOptions Options(long seed, int maxTokens, float temperature = 0.9f) => new()
    {
        Seed = seed,
        Temperature = temperature,
        MaxOutputTokenCount = maxTokens,
    };
#pragma warning restore OPENAI001

    private Task<GenerationResult> SoloAsync(string prompt, ulong seed, int maxTokens, float temperature = 0.9f)
        => fixture.SoloHost.CompleteAsync(new GenerationRequest { Prompt = prompt, Seed = seed, MaxTokens = maxTokens, Sampling = new() { Temperature = temperature } });

    [Fact]
    public async Task Chat_completion_with_openai_client_returns_the_solo_runs_text_with_usage_and_finish_reason()
    {
        var chat = fixture.OpenAi().GetChatClient(ModelName);

        var response = (await chat.CompleteChatAsync([new UserChatMessage("Once upon a time")], Options(seed: 7, maxTokens: 12))).Value;

        var solo = await SoloAsync("Once upon a time", 7, 12);
        Assert.Equal(solo.Text, response.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(ModelName, response.Model);
        Assert.Equal(solo.PromptIds.Count, response.Usage.InputTokenCount);
        Assert.Equal(12, response.Usage.OutputTokenCount);
        Assert.Equal(solo.PromptIds.Count + 12, response.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Chat_completion_streaming_with_openai_client_delivers_token_by_token_then_finish_and_usage()
    {
        var chat = fixture.OpenAi().GetChatClient(ModelName);
        var text = new StringBuilder();
        int contentUpdates = 0;
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Lily")], Options(seed: 3, maxTokens: 16)))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
                if (part.Text.Length > 0) contentUpdates++;
            }
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        var solo = await SoloAsync("Lily", 3, 16);
        Assert.Equal(solo.Text, text.ToString());
        Assert.True(contentUpdates > 1, $"expected the text in several chunks, got {contentUpdates}");
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage);
        Assert.Equal(16, usage.OutputTokenCount);
        Assert.Equal(solo.PromptIds.Count, usage.InputTokenCount);
    }

    [Fact]
    public async Task Sixteen_concurrent_seeded_clients_each_get_the_same_tokens_as_a_solo_run()
    {
        string[] prompts = ["Lily", "Tom", "Once upon a time", "The cat", "One day", "Sue", "A big dog", "The sun"];
        var client = fixture.OpenAi();
        var served = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            var o = Options(seed: 100 + i, maxTokens: 40);
            o.IncludeLogProbabilities = true;
            return (await client.GetChatClient(ModelName).CompleteChatAsync([new UserChatMessage(prompts[i % prompts.Length])], o)).Value;
        }));

        for (int i = 0; i < 16; i++)
        {
            var solo = await SoloAsync(prompts[i % prompts.Length], (ulong)(100 + i), 40);
            Assert.Equal(solo.Text, served[i].Content[0].Text);
            Assert.Equal(solo.CompletionIds.Count, served[i].Usage.OutputTokenCount);
            // Token by token: the bytes of each served token are those of the solo run's id.
            var soloTokens = SpellIds(solo);
            var servedTokens = served[i].ContentTokenLogProbabilities.Select(t => Convert.ToHexString(t.Utf8Bytes!.Value.Span)).ToList();
            Assert.Equal(soloTokens, servedTokens);
        }
    }

    private List<string> SpellIds(GenerationResult result)
    {
        var spelled = new List<string>();
        int previous = result.PromptIds[^1];
        foreach (var token in result.Tokens.Where(t => t.TokenId >= 0))
        {
            spelled.Add(Convert.ToHexString(fixture.Model.Tokenizer.TokenBytes(previous, token.TokenId)));
            previous = token.TokenId;
        }
        return spelled;
    }

    [Fact]
    public async Task Completion_over_http_returns_text_usage_finish_reason_and_seed()
    {
        using var response = await fixture.Http.PostAsync("/v1/completions", Json(new { model = ModelName, prompt = "Once upon a time", max_tokens = 10, seed = 11, temperature = 0.8 }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        var solo = await SoloAsync("Once upon a time", 11, 10, 0.8f);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.Equal(11UL, body.GetProperty("seed").GetUInt64());
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(solo.Text, choice.GetProperty("text").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(10, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(solo.PromptIds.Count + 10, body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Completion_with_ignore_eos_runs_past_the_end_token_to_max_tokens()
    {
        // The shortest greedy reference run that ends at BOS (llama2.c's end), asked for 10 tokens more.
        var reference = Workloads.Reference.Where(r => r.GreedyIds[^1] == 1).MinBy(r => r.GreedyIds.Length);
        int maxTokens = reference.GreedyIds.Length + 10;
        async Task<JsonElement> Complete(bool ignoreEos)
        {
            using var response = await fixture.Http.PostAsync("/v1/completions",
                Json(new { model = ModelName, prompt = reference.PromptIds, max_tokens = maxTokens, temperature = 0, ignore_eos = ignoreEos }));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        }
        var stops = await Complete(false);
        var goesOn = await Complete(true);

        Assert.Equal("stop", stops.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(reference.GreedyIds.Length - 1, stops.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", goesOn.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(maxTokens, goesOn.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.StartsWith(stops.GetProperty("choices")[0].GetProperty("text").GetString()!, goesOn.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Completion_streaming_over_http_sends_chunks_then_usage_then_done()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = Json(new { prompt = "Tom", max_tokens = 8, seed = 5, stream = true, stream_options = new { include_usage = true } }),
        };
        using var response = await fixture.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var data = await SseReader.AllDataAsync(response);

        Assert.Equal("[DONE]", data[^1]);
        var chunks = data[..^1].Select(SseReader.Json).ToList();
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(8, usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var finish = chunks[^2].GetProperty("choices")[0];
        Assert.Equal("length", finish.GetProperty("finish_reason").GetString());
        var text = string.Concat(chunks[..^2].Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        var solo = await SoloAsync("Tom", 5, 8, 1f);
        Assert.Equal(solo.Text, text);
        Assert.True(chunks.Count > 3, "one chunk per token expected");
    }

    [Fact]
    public async Task Streamed_logprobs_of_an_empty_prompt_spell_tokens_as_the_complete_response_does()
    {
        var body = new { prompt = "", max_tokens = 6, seed = 11, logprobs = 1 };
        using var whole = await fixture.Http.PostAsync("/v1/completions", Json(body));
        var expected = JsonDocument.Parse(await whole.Content.ReadAsStringAsync()).RootElement
            .GetProperty("choices")[0].GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToArray();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(new { body.prompt, body.max_tokens, body.seed, body.logprobs, stream = true }) };
        using var response = await fixture.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var streamed = (await SseReader.AllDataAsync(response))[..^1].Select(SseReader.Json)
            .Select(c => c.GetProperty("choices")[0])
            .Where(c => c.TryGetProperty("logprobs", out var l) && l.ValueKind == JsonValueKind.Object)
            .SelectMany(c => c.GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(t => t.GetString()))
            .ToArray();

        Assert.Equal(6, expected.Length);
        Assert.Equal(expected, streamed);
    }

    [Fact]
    public async Task Parallel_samples_n_run_each_sample_with_seed_plus_its_index()
    {
        using var response = await fixture.Http.PostAsync("/v1/completions", Json(new { prompt = "Lily", max_tokens = 12, seed = 40, n = 3 }));
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        var choices = body.GetProperty("choices");
        Assert.Equal(3, choices.GetArrayLength());
        for (int i = 0; i < 3; i++)
        {
            var solo = await SoloAsync("Lily", (ulong)(40 + i), 12, 1f);
            Assert.Equal(i, choices[i].GetProperty("index").GetInt32());
            Assert.Equal((ulong)(40 + i), choices[i].GetProperty("seed").GetUInt64());
            Assert.Equal(solo.Text, choices[i].GetProperty("text").GetString());
        }
        Assert.Equal(36, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Parallel_samples_n_of_one_prompt_tokenize_it_once_and_each_sample_still_matches_its_solo_run()
    {
        long before = fixture.Host.Counters.PromptsTokenized;
        using var response = await fixture.Http.PostAsync("/v1/completions", Json(new { prompt = "Once upon a time", max_tokens = 8, seed = 70, n = 4 }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, fixture.Host.Counters.PromptsTokenized - before);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var choices = body.GetProperty("choices");
        for (int i = 0; i < 4; i++)
            Assert.Equal((await SoloAsync("Once upon a time", (ulong)(70 + i), 8, 1f)).Text, choices[i].GetProperty("text").GetString());

        // Two prompts of n samples each: each prompt is tokenized once.
        before = fixture.Host.Counters.PromptsTokenized;
        using var two = await fixture.Http.PostAsync("/v1/completions", Json(new { prompt = new[] { "Lily", "Tom" }, max_tokens = 4, n = 3 }));
        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        Assert.Equal(2, fixture.Host.Counters.PromptsTokenized - before);

        before = fixture.Host.Counters.PromptsTokenized;
        using var chat = await fixture.Http.PostAsync("/v1/chat/completions", Json(new { messages = new[] { new { role = "user", content = "Sue" } }, max_tokens = 4, n = 3, stream = true }));
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        await chat.Content.ReadAsStringAsync();
        Assert.Equal(1, fixture.Host.Counters.PromptsTokenized - before);
    }

    [Fact]
    public async Task Chat_of_one_user_message_is_the_same_request_as_a_completion_of_its_text()
    {
        using var chat = await fixture.Http.PostAsync("/v1/chat/completions", Json(new { messages = new[] { new { role = "user", content = "The dog" } }, max_tokens = 12, seed = 9 }));
        using var completion = await fixture.Http.PostAsync("/v1/completions", Json(new { prompt = "The dog", max_tokens = 12, seed = 9 }));

        var chatText = JsonDocument.Parse(await chat.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        var completionText = JsonDocument.Parse(await completion.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("text").GetString();
        Assert.Equal(completionText, chatText);
    }

    [Fact]
    public async Task Stop_string_ends_the_text_before_it_with_finish_reason_stop()
    {
        var solo = await SoloAsync("Once upon a time", 1, 30, 0f);
        var stop = solo.Text.Substring(10, 3);
        using var response = await fixture.Http.PostAsync("/v1/completions", Json(new { prompt = "Once upon a time", max_tokens = 30, temperature = 0, stop = new[] { stop } }));
        var choice = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0];

        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(solo.Text[..solo.Text.IndexOf(stop, StringComparison.Ordinal)], choice.GetProperty("text").GetString());
    }

    [Fact]
    public async Task Models_with_openai_client_list_the_loaded_model()
    {
        var models = (await fixture.OpenAi().GetOpenAIModelClient().GetModelsAsync()).Value;

        Assert.Equal([ModelName], models.Select(m => m.Id));
    }

    [Fact]
    public async Task Unknown_model_with_openai_client_is_404()
    {
        var chat = fixture.OpenAi().GetChatClient("gpt-4o");

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(404, error.Status);
        var body = ErrorOf(error.GetRawResponse()!.Content.ToString());
        Assert.Equal("model", body.GetProperty("param").GetString());
        Assert.Equal("model_not_found", body.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Unknown_url_and_wrong_method_are_error_json()
    {
        using var unknown = await fixture.Http.GetAsync("/v1/nothing-here");
        using var wrongMethod = await fixture.Http.GetAsync("/v1/completions");

        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("unknown_url", ErrorOf(await unknown.Content.ReadAsStringAsync()).GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Equal("method_not_allowed", ErrorOf(await wrongMethod.Content.ReadAsStringAsync()).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Missing_or_wrong_api_key_is_401_with_error_json()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.BaseAddress };
        using var missing = await anonymous.PostAsync("/v1/completions", Json(new { prompt = "x" }));
        using var wrongRequest = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        wrongRequest.Headers.Authorization = new("Bearer", "not-the-key");
        using var wrong = await anonymous.SendAsync(wrongRequest);
        var sdkError = await Assert.ThrowsAsync<ClientResultException>(() => fixture.OpenAi("not-the-key").GetOpenAIModelClient().GetModelsAsync());

        foreach (var response in new[] { missing, wrong })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("invalid_api_key", ErrorOf(await response.Content.ReadAsStringAsync()).GetProperty("code").GetString());
        }
        Assert.Equal(401, sdkError.Status);
    }

    [Fact]
    public async Task Health_and_metrics_need_no_key_and_metrics_are_prometheus_text()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.BaseAddress };
        (await fixture.Http.PostAsync("/v1/completions", Json(new { prompt = "Sue", max_tokens = 4 }))).Dispose();

        using var health = await anonymous.GetAsync("/health");
        var metrics = await anonymous.GetStringAsync("/metrics");

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        foreach (var name in new[] { "pipeline_queue_depth ", "pipeline_active_sequences ", "pipeline_last_batch_size ", "pipeline_tokens_generated_total ", "pipeline_kv_cache_bytes ", "pipeline_kv_budget_bytes ", "pipeline_kv_reserved_bytes " })
            Assert.Contains("\n" + name, "\n" + metrics);
        foreach (var histogram in new[] { "pipeline_time_to_first_token_seconds", "pipeline_inter_token_latency_seconds" })
        {
            Assert.Contains($"# TYPE {histogram} histogram", metrics);
            Assert.Contains($"{histogram}_bucket{{le=\"+Inf\"}} ", metrics);
            Assert.Contains($"{histogram}_sum ", metrics);
            Assert.Matches($"{histogram}_count [1-9]", metrics);
        }
    }

    public static TheoryData<string, string, string?> InvalidBodies() => new()
    {
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"top_p":7}""", "top_p" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"temperature":"hot"}""", "temperature" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"temperature":-1}""", "temperature" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"max_tokens":0}""", "max_tokens" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"max_completion_tokens":"ten"}""", "max_completion_tokens" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"n":0}""", "n" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"stop":5}""", "stop" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"stream":"yes"}""", "stream" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"seed":"x"}""", "seed" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"ignore_eos":"yes"}""", "ignore_eos" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"top_logprobs":3}""", "top_logprobs" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"Lily"}],"stream":true,"top_k":-1}""", "top_k" },
        { "/v1/chat/completions", """{"messages":"Lily"}""", "messages" },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":7}]}""", "messages[0].content" },
        { "/v1/completions", """{"max_tokens":5}""", "prompt" },
        { "/v1/completions", """{"prompt":"Lily","logprobs":50}""", "logprobs" },
        { "/v1/completions", $$"""{"prompt":"{{string.Concat(Enumerable.Repeat("Lily had a dog. ", 200))}}"}""", "prompt" },
        { "/v1/completions", """{"prompt":"Lily","max_tokens":5""", null },
        { "/v1/completions", """[1,2]""", null },
        { "/v1/completions", "", null },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task Invalid_request_is_400_naming_the_parameter(string path, string body, string? param)
    {
        using var response = await fixture.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = ErrorOf(text);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.DoesNotContain(" at Pipeline.", text);
    }

    [Fact]
    public async Task Body_over_one_mebibyte_is_413_with_error_json()
    {
        var huge = """{"prompt":""" + "\"" + new string('a', 2 << 20) + "\"}";
        using var response = await fixture.Http.PostAsync("/v1/completions", new StringContent(huge, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("request_too_large", ErrorOf(await response.Content.ReadAsStringAsync()).GetProperty("code").GetString());
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private static JsonElement ErrorOf(string body)
    {
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        foreach (var field in new[] { "message", "type", "param", "code" }) Assert.True(error.TryGetProperty(field, out _), $"error has no '{field}': {body}");
        return error;
    }
}
