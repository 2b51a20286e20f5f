using System.Net;
using System.Text;
using System.Text.Json;
using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;

namespace Pipeline.Integration.Server;

/// <summary>A server whose host is steered by a <see cref="GateHook"/> and admits one waiting request at most.</summary>
public sealed class GatedServerFixture : ServerFixture
{
    internal GateHook Hook { get; } = new();

    protected override string? ServerApiKey => null;

    // One tokenizer, so a request held at tokenize leaves the next waiting in the one-place queue.
    private protected override PipelineHostOptions HostOptions => new() { RejectWhenFull = true, AdmissionCapacity = 1, TokenizeParallelism = 1, Hook = Hook };
}

/// <summary>Behaviour that depends on the pipeline's state at a given moment: disconnects and a full admission queue.</summary>
public sealed class GatedServerTests(GatedServerFixture fixture) : IClassFixture<GatedServerFixture>
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Client_disconnecting_mid_request_cancels_its_request_and_frees_its_kv_memory(bool stream)
    {
        var request = new { prompt = "Once upon a time", max_tokens = 400, seed = 2, temperature = 0.5, stream };
        var uncancelled = await fixture.SoloHost.CompleteAsync(new GenerationRequest { Prompt = request.prompt, MaxTokens = 400, Seed = 2, Sampling = new() { Temperature = 0.5f } });
        Assert.True(uncancelled.CompletionIds.Count > 40, "the request must be long enough for a disconnect to cut it short");
        // Let a few decode steps through, then hold the decoder so the request is surely mid-flight.
        fixture.Hook.Close(HandOff.Stepped, passFirst: 4);
        try
        {
            // No draining: disposing an unread response must close the connection, as a client that goes away does.
            using (var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = fixture.BaseAddress })
            using (var disconnect = new CancellationTokenSource())
            using (var message = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(request) })
            {
                var sending = client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, disconnect.Token);
                // Streamed: read the first chunk and keep the response open (unread) until the decoder is held.
                using var response = stream ? await sending : null;
                if (response is not null)
                {
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    var chunks = SseReader.DataAsync(response).GetAsyncEnumerator();
                    Assert.True(await chunks.MoveNextAsync());
                }
                await Eventually.HoldsAsync(() => fixture.Hook.Held.IsCompleted,
                    () => $"the decoder was never held: {fixture.Hook.Calls} steps, KV bytes {fixture.Host.KvMemory.Bytes}, active {fixture.Host.Counters.ActiveSequences}");
                Assert.True(fixture.Host.KvMemory.Bytes > 0, "the request holds a KV cache while it runs");
                // A non-streamed request writes nothing until it ends, so only RequestAborted can tell the server.
                disconnect.Cancel();
                if (!stream) await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);
            } // Disposing the response and the client closes the connection: the client is gone.

            fixture.Hook.Open();
            await Eventually.HoldsAsync(
                () => fixture.Host.KvMemory.Bytes == 0 && fixture.Host.Counters.ActiveSequences == 0,
                () => $"KV bytes {fixture.Host.KvMemory.Bytes}, active sequences {fixture.Host.Counters.ActiveSequences}");
            Assert.True(fixture.Hook.Calls < uncancelled.CompletionIds.Count,
                $"the request ran {fixture.Hook.Calls} steps of the {uncancelled.CompletionIds.Count} it would have run: it was not cancelled");
        }
        finally
        {
            fixture.Hook.Open();
        }
    }

    [Fact]
    public async Task Full_admission_queue_is_429_with_retry_after_and_the_queued_requests_still_finish()
    {
        using var client = new HttpClient { BaseAddress = fixture.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var body = new { prompt = "Lily", max_tokens = 3, seed = 1 };
        // Hold the tokenizer on the first request, so the second waits in the one-place queue.
        fixture.Hook.Close(HandOff.Tokenized, passFirst: 0);
        Task<HttpResponseMessage>? first = null, second = null;
        try
        {
            first = client.PostAsync("/v1/completions", Json(body));
            await fixture.Hook.Held.WaitAsync(TimeSpan.FromSeconds(20));
            second = client.PostAsync("/v1/completions", Json(body));
            await Eventually.HoldsAsync(() => fixture.Host.QueueDepth == 1, () => $"queue depth {fixture.Host.QueueDepth}");

            using var rejected = await client.PostAsync("/v1/chat/completions", Json(new { messages = new[] { new { role = "user", content = "Tom" } }, stream = true }));

            Assert.Equal(HttpStatusCode.TooManyRequests, rejected.StatusCode);
            Assert.Equal("1", rejected.Headers.GetValues("Retry-After").Single());
            var error = JsonDocument.Parse(await rejected.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
            Assert.Equal("queue_full", error.GetProperty("code").GetString());
        }
        finally
        {
            fixture.Hook.Open();
        }
        using var firstResponse = await first;
        using var secondResponse = await second!;
        Assert.Equal(HttpStatusCode.OK, firstResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, secondResponse.StatusCode);
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}
