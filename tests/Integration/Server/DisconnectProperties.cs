using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Xunit.Abstractions;

namespace Pipeline.Integration.Server;

/// <summary>
/// Clients of the real server that go away mid-stream, at generated points, beside clients that
/// read to the end: KV memory returns to zero every time, and every client that stayed reads the
/// text of its solo run.
/// </summary>
public sealed class DisconnectProperties(ServerFixture fixture, ITestOutputHelper output) : IClassFixture<ServerFixture>
{
    private static readonly string[] Prompts = ["Once upon a time", "Lily", "Tom had a ball", "The sun"];

    /// <summary>One streamed client: its request, and after how many chunks it disconnects (null: never).</summary>
    public sealed record StreamClient(string Prompt, int Seed, int MaxTokens, int? DisconnectAfter)
    {
        public override string ToString() => $"\"{Prompt}\" seed {Seed} max {MaxTokens}{(DisconnectAfter is { } k ? $" DISCONNECTS after {k} chunks" : "")}";
    }

    private static Gen<StreamClient> Client =>
        from prompt in Gen.Elements(Prompts)
        from seed in Gen.Choose(0, 1000)
        from maxTokens in Gen.Choose(8, 60)
        from leaves in Gen.Frequency((1, Gen.Constant(false)), (1, Gen.Constant(true)))
        from after in Gen.Choose(0, 6)
        select new StreamClient(prompt, seed, maxTokens, leaves ? after : null);

    [Fact]
    public void Clients_disconnecting_mid_stream_leave_no_kv_memory_and_the_others_read_their_solo_text()
    {
        int midStream = 0, cases = 0;
        var property = Prop.ForAll(Arb.From(Client.ArrayOf().Where(a => a.Length > 0).Select(a => a.Take(6).ToArray())), clients =>
        {
            var outcomes = Task.WhenAll(clients.Select(RunAsync)).GetAwaiter().GetResult();
            cases++;
            midStream += outcomes.Count(o => o.LeftMidStream);
            try
            {
                Eventually.HoldsAsync(() => fixture.Host.KvMemory.Bytes == 0 && fixture.Host.Counters.ActiveSequences == 0,
                    () => $"KV bytes {fixture.Host.KvMemory.Bytes}, active sequences {fixture.Host.Counters.ActiveSequences}").GetAwaiter().GetResult();
            }
            catch (Xunit.Sdk.XunitException e)
            {
                return false.Label(e.Message);
            }
            for (int i = 0; i < clients.Length; i++)
            {
                if (outcomes[i].Text is not { } text) continue;
                var c = clients[i];
                var solo = fixture.SoloHost.CompleteAsync(new GenerationRequest { Prompt = c.Prompt, Seed = (ulong)c.Seed, MaxTokens = c.MaxTokens, Sampling = new() { Temperature = 0.8f } }).GetAwaiter().GetResult();
                if (solo.Text != text) return false.Label($"client {i} ({c}) read \"{text}\", its solo run \"{solo.Text}\"");
            }
            return true.ToProperty();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(12).WithQuietOnSuccess(true), property);
        output.WriteLine($"{cases} cases, {midStream} clients left mid-stream");
        Assert.True(midStream >= 5, $"too few clients left mid-stream: {midStream} in {cases} cases");
    }

    private sealed record Outcome(string? Text, bool LeftMidStream);

    /// <summary>Streams one completion; reads it to the end, or closes the connection after the client's chunks.</summary>
    private async Task<Outcome> RunAsync(StreamClient c)
    {
        // No draining: disposing an unread response closes the connection, as a client that goes away does.
        using var http = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = fixture.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServerFixture.ApiKey);
        var body = JsonSerializer.Serialize(new { prompt = c.Prompt, max_tokens = c.MaxTokens, seed = c.Seed, temperature = 0.8, stream = true });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = new StringBuilder();
        int chunks = 0;
        await foreach (var data in SseReader.DataAsync(response))
        {
            if (data == "[DONE]") return new Outcome(text.ToString(), false);
            if (chunks++ == c.DisconnectAfter) return new Outcome(null, true); // leaves: the response and the connection are disposed unread
            var choices = SseReader.Json(data).GetProperty("choices");
            if (choices.GetArrayLength() > 0) text.Append(choices[0].GetProperty("text").GetString());
        }
        return new Outcome(null, false);
    }
}
