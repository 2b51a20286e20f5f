using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Extensions.AI;
using Pipeline.Inference.Runtime;

namespace Pipeline.Integration;

/// <summary>Shares one loaded model and host among the IChatClient tests.</summary>
public sealed class ChatClientFixture : IAsyncLifetime
{
    internal LoadedModel Model { get; private set; } = null!;
    public PipelineHost Host { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Model = LoadedModel.Load(RepoPaths.ModelDir);
        Host = PipelineHost.Start(Model);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        Model.Dispose();
    }
}

public sealed class ChatClientTests(ChatClientFixture fixture) : IClassFixture<ChatClientFixture>
{
    private static readonly ChatOptions Seeded = new() { Seed = 21, Temperature = 0.8f, MaxOutputTokens = 20 };

    [Fact]
    public async Task GetStreamingResponseAsync_consumer_that_stops_early_cancels_its_request_and_frees_its_kv_memory()
    {
        // Unread, this request runs to the end of the context (400 tokens, no end token: see the check).
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 400 };
        var chat = fixture.Host.CreateChatRequest([new System.Text.Json.Nodes.JsonObject { ["role"] = "user", ["content"] = "Lily" }]);
        var whole = await fixture.Host.CompleteAsync(chat with { MaxTokens = 400, Sampling = new() { Temperature = 0 } });
        await using var host = PipelineHost.Start(fixture.Model, new PipelineHostOptions { Settings = new Wiring.PipelineSettings { Hook = new StageHook { OnHandOff = (_, _) => Thread.Sleep(1) } } });
        using IChatClient client = new PipelineChatClient(host);
        int read = 0;
        await foreach (var _ in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Lily")], options))
            if (++read == 3) break;
        await host.DrainAsync();
        Assert.Equal(0, host.KvMemory.Bytes);
        Assert.True(host.Counters.TokensGenerated < whole.CompletionIds.Count / 2,
            $"the abandoned request ran on to {host.Counters.TokensGenerated} tokens of {whole.CompletionIds.Count}");
    }

    [Fact]
    public async Task GetResponseAsync_seeded_options_match_host_complete_async_with_usage_and_finish_reason()
    {
        using IChatClient client = new PipelineChatClient(fixture.Host);

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Lily")], Seeded);

        var expected = await fixture.Host.CompleteAsync(new GenerationRequest { Prompt = "Lily", Seed = 21, Sampling = new() { Temperature = 0.8f }, MaxTokens = 20 });
        Assert.Equal(expected.Text, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(20, response.Usage!.OutputTokenCount);
        Assert.Equal(expected.PromptIds.Count, response.Usage.InputTokenCount);
        Assert.Equal(21UL, response.AdditionalProperties!["seed"]);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_updates_concatenate_to_the_non_streamed_response()
    {
        using IChatClient client = new PipelineChatClient(fixture.Host);
        var updates = new List<ChatResponseUpdate>();

        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Lily")], Seeded))
            updates.Add(update);

        var whole = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Lily")], Seeded);
        Assert.True(updates.Count > 2, "one update per token expected");
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        var streamed = updates.ToChatResponse();
        Assert.Equal(ChatFinishReason.Length, streamed.FinishReason);
        Assert.Equal(20, streamed.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task GetResponseAsync_stop_sequence_ends_before_it_with_finish_reason_stop()
    {
        using IChatClient client = new PipelineChatClient(fixture.Host);
        var greedy = new ChatOptions { Temperature = 0, MaxOutputTokens = 30 };
        var full = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Once upon a time")], greedy);
        var stop = full.Text.Substring(12, 3);

        var stopped = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Once upon a time")],
            new ChatOptions { Temperature = 0, MaxOutputTokens = 30, StopSequences = [stop] });

        Assert.Equal(full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)], stopped.Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }

    [Fact]
    public async Task GetResponseAsync_invalid_top_p_throws_naming_the_option()
    {
        using IChatClient client = new PipelineChatClient(fixture.Host);

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, "Lily")], new ChatOptions { TopP = 3 }));

        Assert.Equal("top_p", error.ParamName);
    }

    [Fact]
    public async Task AddPipeline_registers_host_and_chat_client_and_stopping_the_app_disposes_the_host()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddPipeline(o =>
        {
            o.Model = fixture.Model;
            o.Host = o.Host with { MaxBatch = 4 };
        });
        using var app = builder.Build();
        await app.StartAsync();
        var host = app.Services.GetRequiredService<PipelineHost>();
        var client = app.Services.GetRequiredService<IChatClient>();

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Tom")], new ChatOptions { MaxOutputTokens = 5, Seed = 1 });
        Assert.Equal(5, response.Usage!.OutputTokenCount);
        Assert.Same(host, client.GetService<PipelineHost>());

        await app.StopAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => host.CompleteAsync(new GenerationRequest { Prompt = "Tom" }));
    }
}
