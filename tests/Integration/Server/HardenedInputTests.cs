using System.Net;
using System.Text;
using System.Text.Json;
using Pipeline.Actors.Scheduling;
using Pipeline.Server;
using Pipeline.Wiring;

namespace Pipeline.Integration.Server;

/// <summary>Inputs that once hurt the server (a 500, a 200 that should be a 400, a reset connection) each get a readable 4xx.</summary>
public sealed class HardenedInputTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private async Task<(HttpStatusCode Status, JsonElement Error)> Post(string path, HttpContent content)
    {
        using var response = await fixture.Http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(" at Pipeline.", text, StringComparison.Ordinal);
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.GetProperty("error").Clone());
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    [Fact]
    public async Task Invalid_utf8_inside_a_json_string_is_400()
    {
        var bytes = Encoding.UTF8.GetBytes("""{"prompt":"Lily X","max_tokens":3}""");
        bytes[Array.IndexOf(bytes, (byte)'X')] = 0xFF;
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new("application/json");
        var (status, error) = await Post("/v1/completions", content);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("UTF-8", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lone_surrogate_escape_is_400_naming_where_it_is()
    {
        var (status, error) = await Post("/v1/completions", Json("""{"prompt":"Lily \ud800","max_tokens":3}"""));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("$.prompt", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"Lily"}],"temperature":1e30}""", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"Lily"}],"temperature":2.5}""", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"Lily"}],"stop":["a","b","c","d","e"]}""", "stop")]
    [InlineData("""{"messages":[{"role":"wizard","content":"Lily"}]}""", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"user","content":"Lily"}],"repetition_penalty":1e-38}""", "repetition_penalty")]
    [InlineData("""{"messages":[{"role":"user","content":"Lily"}],"repetition_penalty":1000}""", "repetition_penalty")]
    public async Task An_option_out_of_the_range_openai_allows_is_400_naming_it(string body, string param)
    {
        var (status, error) = await Post("/v1/chat/completions", Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task A_stop_string_longer_than_its_bound_is_400()
    {
        var body = JsonSerializer.Serialize(new { prompt = "Lily", stop = new string('x', 300) });
        var (status, error) = await Post("/v1/completions", Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("stop", error.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Prompt_plus_max_tokens_beyond_the_context_is_400_naming_both_numbers(bool stream)
    {
        int context = fixture.Model.Decoder.Config.SeqLen;
        var body = JsonSerializer.Serialize(new { prompt = "Lily", max_tokens = context * 10, stream });
        var (status, error) = await Post("/v1/completions", Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("max_tokens", error.GetProperty("param").GetString());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains($"max_tokens is {context * 10}", message, StringComparison.Ordinal);
        Assert.Contains("the prompt is 2 tokens", message, StringComparison.Ordinal);
        Assert.Contains($"context of {context} tokens", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_max_tokens_a_long_prompt_still_runs_to_the_end_of_the_context()
    {
        using var response = await fixture.Http.PostAsync("/v1/completions", Json("""{"prompt":"Lily","temperature":0}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_message_with_a_key_named_twice_is_read_with_its_last_value_as_the_rest_of_the_body_is()
    {
        // Once a 500: the message was copied into a JsonObject, which throws on a duplicate key.
        using var twice = await fixture.Http.PostAsync("/v1/chat/completions",
            Json("""{"messages":[{"role":"user","content":"Tom","content":"Lily","name":"a","name":"b"}],"max_tokens":4,"temperature":0}"""));
        using var once = await fixture.Http.PostAsync("/v1/chat/completions", Json("""{"messages":[{"role":"user","content":"Lily"}],"max_tokens":4,"temperature":0}"""));
        Assert.Equal(HttpStatusCode.OK, twice.StatusCode);
        Assert.Equal(ChatText(await once.Content.ReadAsStringAsync()), ChatText(await twice.Content.ReadAsStringAsync()));

        var (status, error) = await Post("/v1/chat/completions", Json("""{"messages":[{"role":"user","role":"wizard","content":"Lily"}]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("messages[0].role", error.GetProperty("param").GetString());
    }

    [Fact]
    public void Messages_and_tools_with_keys_named_twice_reach_the_chat_template_whole_with_the_last_values()
    {
        // A template walks every node (tool calls, tool definitions); a JsonObject built from a duplicate key threw there.
        using var body = JsonDocument.Parse("""
            {"messages":[{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":{"a":1,"a":2}}}]}],
             "tools":[{"type":"function","function":{"name":"f","name":"g","parameters":{}}}]}
            """);
        string? seen = null;
        Pipeline.Server.OpenAi.ApiRequestParser.ParseChat(body.RootElement, 16, (messages, variables) =>
        {
            seen = messages.ToJsonString() + " " + variables?.ToJsonString();
            return new GenerationRequest { Prompt = "x" };
        });
        Assert.Contains("\"arguments\":{\"a\":2}", seen, StringComparison.Ordinal);
        Assert.Contains("\"function\":{\"name\":\"g\",\"parameters\":{}}", seen, StringComparison.Ordinal);
    }

    private static string? ChatText(string response) =>
        JsonDocument.Parse(response).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();

    [Theory]
    [InlineData("POST", "/v1/completions", false, HttpStatusCode.Unauthorized)]
    [InlineData("POST", "/v1/no-such-endpoint", true, HttpStatusCode.NotFound)]
    [InlineData("PUT", "/v1/completions", true, HttpStatusCode.MethodNotAllowed)]
    [InlineData("GET", "/health", true, HttpStatusCode.OK)]
    public async Task An_answer_given_without_reading_a_large_body_leaves_the_connection_usable_for_the_next_request(string method, string path, bool withKey, HttpStatusCode expected)
    {
        // One connection, so the next request must reuse the one the large body was sent on.
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = fixture.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", ServerFixture.ApiKey);
        var large = Encoding.UTF8.GetBytes("""{"prompt":""" + "\"" + new string('a', 3 << 20) + "\"}");
        for (int round = 0; round < 8; round++)
        {
            using var message = new HttpRequestMessage(new HttpMethod(method), path) { Content = new ByteArrayContent(large) };
            message.Content.Headers.ContentType = new("application/json");
            if (!withKey) message.Headers.Authorization = new("Bearer", "wrong");
            using (var early = await client.SendAsync(message)) Assert.Equal(expected, early.StatusCode);
            using var next = await client.PostAsync("/v1/completions", Json("""{"prompt":"Lily","max_tokens":2}"""));
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }
    }

    [Theory]
    [InlineData("/favicon.ico")]
    [InlineData("/v1/models.json")]
    [InlineData("/v1/completions.json")]
    public async Task An_unknown_url_that_looks_like_a_file_is_a_404_in_error_json(string path)
    {
        // Once an empty 404: the fallback route's default pattern skips paths with a file extension.
        using var response = await fixture.Http.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("unknown_url", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_twenty_megabyte_body_is_a_413_the_client_can_read()
    {
        var huge = """{"prompt":""" + "\"" + new string('a', 20 << 20) + "\"}";
        var (status, error) = await Post("/v1/completions", Json(huge));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
    }
}

/// <summary>A server whose pipeline faults for good answers 503 with the reason, on requests and on /health, and counts the fault.</summary>
public sealed class FaultedServerTests
{
    [Fact]
    public async Task A_host_that_stays_faulted_answers_503_with_the_reason_on_requests_and_health_and_counts_the_fault()
    {
        var hook = new FaultAt(HandOff.Stepped, () => new InvalidCastException("broken"), times: int.MaxValue);
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { MaxRestarts = 0, RejectWhenFull = true, Settings = new PipelineSettings { Hook = hook } });
        await using var server = await PipelineServer.StartAsync(host, new PipelineServerOptions { Urls = ["http://127.0.0.1:0"] });
        using var http = new HttpClient { BaseAddress = server.Addresses.Single(), Timeout = TimeSpan.FromSeconds(60) };

        using (var health = await http.GetAsync("/health")) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using (var first = await http.PostAsync("/v1/completions", new StringContent("""{"prompt":"Lily","max_tokens":5}""", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
        await Eventually.HoldsAsync(() => host.FaultReason is not null, () => "the host never reported its fault", TimeSpan.FromSeconds(30));

        using (var refused = await http.PostAsync("/v1/completions", new StringContent("""{"prompt":"Lily","max_tokens":5}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("the decode actor failed", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var health = await http.GetAsync("/health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Contains("stays faulted", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("pipeline_actor_faults_total 1", metrics, StringComparison.Ordinal);
        Assert.Equal(0, host.KvMemory.Bytes);
    }
}

/// <summary>With n &gt; 1, a sample that fails cancels its siblings instead of letting them run on for a response that cannot succeed.</summary>
public sealed class FailedSampleTests
{
    [Fact]
    public async Task A_sample_that_fails_cancels_its_siblings_and_frees_their_kv_memory()
    {
        var whole = await Workloads.SoloAsync(new GenerationRequest { Prompt = "Lily", MaxTokens = 300, Sampling = new() { Temperature = 0 } });
        Assert.True(whole.CompletionIds.Count >= 40, $"the reference run is too short to show anything: {whole.CompletionIds.Count} tokens");
        // The sixth draw (both samples have begun by then) fails; every hand-off is slowed so the sibling cannot finish first.
        int draws = 0;
        var hook = new StageHook
        {
            OnHandOff = (_, _) => Thread.Sleep(1),
            OnWork = (stage, _) => { if (stage == HandOff.Sampled && Interlocked.Increment(ref draws) == 6) throw new InvalidOperationException("injected draw failure"); },
        };
        await using var host = PipelineHost.Start(SharedModel.Instance, new PipelineHostOptions { RejectWhenFull = true, Settings = new PipelineSettings { Hook = hook, MaxPrefillBatch = 1 } });
        await using var server = await PipelineServer.StartAsync(host, new PipelineServerOptions { Urls = ["http://127.0.0.1:0"] });
        using var http = new HttpClient { BaseAddress = server.Addresses.Single(), Timeout = TimeSpan.FromSeconds(60) };

        using var response = await http.PostAsync("/v1/completions", new StringContent("""{"prompt":"Lily","max_tokens":300,"temperature":0,"n":2}""", Encoding.UTF8, "application/json"));
        Assert.False(response.IsSuccessStatusCode, $"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}; {draws} draws");
        await host.DrainAsync();
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.True(host.Counters.TokensGenerated < whole.CompletionIds.Count / 2,
            $"the sibling ran on to {host.Counters.TokensGenerated} tokens of {whole.CompletionIds.Count}");
    }
}
