using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Pipeline.Integration.Server;

/// <summary>
/// A bounded soak of the real server on loopback: many clients at once, streamed and not,
/// completions and chat, a third of them going away mid-stream. No request that stays may fail,
/// none may hang, and every KV cache must come back.
/// </summary>
public sealed class BoundedLoadTests(ServerFixture fixture, ITestOutputHelper output) : IClassFixture<ServerFixture>
{
    private const int Requests = 1000, Concurrency = 64;
    private const double DisconnectShare = 0.3;
    private const int LeaverMaxTokens = 64;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly string[] Prompts = ["Once upon a time", "Lily and Tom", "The cat", "One day, a little girl", ""];

    [Fact]
    public async Task A_thousand_requests_at_64_concurrent_with_a_third_disconnecting_mid_stream_get_no_failure_and_return_all_kv_memory()
    {
        var tally = new Tally();
        using var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = fixture.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServerFixture.ApiKey);
        int next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(_ => Task.Run(async () =>
        {
            for (int i = Interlocked.Increment(ref next); i < Requests; i = Interlocked.Increment(ref next))
                await OneAsync(client, i, tally);
        })));
        var load = clock.Elapsed;
        await Eventually.HoldsAsync(
            () => fixture.Host.KvMemory.Bytes == 0 && fixture.Host.Counters.ActiveSequences == 0,
            () => $"KV bytes {fixture.Host.KvMemory.Bytes} in {fixture.Host.KvMemory.LiveCaches} caches, active sequences {fixture.Host.Counters.ActiveSequences}",
            TimeSpan.FromSeconds(30));
        output.WriteLine($"{Requests} requests at {Concurrency} concurrent in {load.TotalSeconds:F1} s; KV back to 0 after {clock.Elapsed.TotalSeconds:F1} s; {tally}");
        long leaversTokens = fixture.Host.Counters.TokensGenerated - tally.StayersTokens;
        output.WriteLine($"tokens generated {fixture.Host.Counters.TokensGenerated}, {tally.StayersTokens} of them to the requests that stayed: {leaversTokens} to the {tally.MidStream} that left mid-stream ({(double)leaversTokens / Math.Max(1, tally.MidStream):F1} each of the {LeaverMaxTokens} they asked for)");

        Assert.True(tally.Failures.IsEmpty, $"{tally.Failures.Count} failed: {string.Join(" | ", tally.Failures.Take(10))}");
        Assert.Equal(Requests, tally.Completed + tally.Disconnected);
        Assert.True(tally.MidStream >= Requests / 4, $"too few disconnects happened mid-stream: {tally}");
        // A client that left stops its generation: the leavers got far fewer tokens than they asked for.
        Assert.True(leaversTokens < tally.MidStream * LeaverMaxTokens / 4, $"the requests whose clients left generated {leaversTokens} tokens: they were not cancelled");
        Assert.True(tally.Streamed >= Requests / 5 && tally.Unstreamed >= Requests / 5 && tally.Chat >= Requests / 5 && tally.Completion >= Requests / 5, $"not a mix: {tally}");

        // Alive: healthy, serving, and holding nothing.
        using (var health = await client.GetAsync(new Uri("/health", UriKind.Relative))) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using (var normal = await client.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative),
                   new StringContent("""{"messages":[{"role":"user","content":"Lily"}],"max_tokens":4}""", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.OK, normal.StatusCode);
        await Eventually.HoldsAsync(() => fixture.Host.KvMemory.Bytes == 0, () => $"{fixture.Host.KvMemory.Bytes} KV bytes held");
        Assert.Contains("\npipeline_kv_cache_bytes 0\n", await client.GetStringAsync(new Uri("/metrics", UriKind.Relative)), StringComparison.Ordinal);
    }

    /// <summary>Request <paramref name="i"/>: its kind drawn from a generator seeded with i, so a failure names a replayable request.</summary>
    private static async Task OneAsync(HttpClient client, int i, Tally tally)
    {
        var random = new Random(i);
        bool disconnect = random.NextDouble() < DisconnectShare;
        bool stream = disconnect || random.Next(7) < 3; // 30 % leave, 30 % stream to the end, 40 % whole
        bool chat = random.Next(2) == 0;
        // A disconnecting client asks for many tokens and leaves after a few events; the rest ask for few.
        int maxTokens = disconnect ? LeaverMaxTokens : random.Next(2, 17);
        int leaveAfter = random.Next(1, 4);
        string prompt = Prompts[random.Next(Prompts.Length)];
        var body = new Dictionary<string, object>
        {
            ["max_tokens"] = maxTokens,
            ["temperature"] = Math.Round(random.NextDouble(), 2),
            ["seed"] = i,
            ["stream"] = stream,
            ["n"] = random.Next(10) == 0 ? 2 : 1,
        };
        if (chat) body["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = prompt } };
        else body["prompt"] = prompt;
        // Usage tells how many tokens a request that stayed was given, so the rest were the leavers'.
        if (stream) body["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true };
        string json = JsonSerializer.Serialize(body);
        tally.Count(stream, chat);

        using var deadline = new CancellationTokenSource(Deadline);
        using var leave = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
        string name = $"request {i} ({(chat ? "chat" : "completion")}, {(stream ? "stream" : "whole")}{(disconnect ? $", leaves after {leaveAfter} events" : "")}): {json}";
        try
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, chat ? "/v1/chat/completions" : "/v1/completions")
            {
                Content = new StringContent(json, Encoding.UTF8, "application/json"),
            };
            using var response = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, leave.Token);
            tally.Status((int)response.StatusCode);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                tally.Fail($"{name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(deadline.Token)}");
                return;
            }
            if (!stream)
            {
                var root = JsonDocument.Parse(await response.Content.ReadAsStringAsync(deadline.Token)).RootElement;
                var reason = root.GetProperty("choices")[0].GetProperty("finish_reason").GetString();
                if (reason is not ("stop" or "length")) tally.Fail($"{name}: finish reason {reason}");
                else tally.Complete(root.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
                return;
            }
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(leave.Token));
            int events = 0, tokens = -1;
            bool finished = false, done = false;
            while (await reader.ReadLineAsync(leave.Token) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                var data = line["data: ".Length..];
                if (data == "[DONE]")
                {
                    done = true;
                    break;
                }
                var chunk = JsonDocument.Parse(data).RootElement;
                if (chunk.TryGetProperty("error", out var error))
                {
                    tally.Fail($"{name}: the stream failed: {error}");
                    return;
                }
                if (chunk.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object) tokens = usage.GetProperty("completion_tokens").GetInt32();
                if (chunk.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0)
                {
                    finished |= choices[0].GetProperty("finish_reason").ValueKind == JsonValueKind.String;
                    if (choices[0].TryGetProperty("text", out _) || choices[0].GetProperty("delta").TryGetProperty("content", out _)) events++;
                }
                if (disconnect && events >= leaveAfter && !finished)
                {
                    // Leave mid-stream: the response is disposed unread (and not drained), which closes the connection, as a client that goes away does.
                    tally.Leave(midStream: true);
                    await leave.CancelAsync();
                    return;
                }
            }
            if (!done || !finished || tokens < 0) tally.Fail($"{name}: the stream ended without {(!done ? "[DONE]" : !finished ? "a finish reason" : "usage")}");
            else if (disconnect) tally.Leave(midStream: false, endedWith: tokens); // it ended before the client meant to leave
            else tally.Complete(tokens);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            tally.Fail($"{name}: no complete answer within {Deadline.TotalSeconds} s");
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            tally.Fail($"{name}: {e.GetType().Name}: {e.Message}");
        }
    }

    private sealed class Tally
    {
        private int _completed, _disconnected, _midStream, _streamed, _unstreamed, _chat, _completion;
        public ConcurrentQueue<string> Failures { get; } = new();
        public ConcurrentDictionary<int, int> Statuses { get; } = new();

        public int Completed => _completed;
        public int Disconnected => _disconnected;
        public int MidStream => _midStream;
        public int Streamed => _streamed;
        public int Unstreamed => _unstreamed;
        public int Chat => _chat;
        public int Completion => _completion;

        public void Count(bool stream, bool chat)
        {
            Interlocked.Increment(ref stream ? ref _streamed : ref _unstreamed);
            Interlocked.Increment(ref chat ? ref _chat : ref _completion);
        }

        public void Status(int status) => Statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
        private long _stayersTokens;
        /// <summary>Tokens generated (by their usage) for the requests that ran to their end, disconnects that ended first included.</summary>
        public long StayersTokens => Interlocked.Read(ref _stayersTokens);

        public void Complete(int tokens)
        {
            Interlocked.Increment(ref _completed);
            Interlocked.Add(ref _stayersTokens, tokens);
        }

        public void Leave(bool midStream, int endedWith = 0)
        {
            Interlocked.Increment(ref _disconnected);
            if (midStream) Interlocked.Increment(ref _midStream);
            Interlocked.Add(ref _stayersTokens, endedWith);
        }

        public void Fail(string why) => Failures.Enqueue(why);

        public override string ToString() =>
            $"completed {Completed}, disconnected {Disconnected} ({MidStream} mid-stream), failed {Failures.Count}; streamed {Streamed}, whole {Unstreamed}; " +
            $"chat {Chat}, completion {Completion}; statuses {{{string.Join(", ", Statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}"))}}}";
    }
}
