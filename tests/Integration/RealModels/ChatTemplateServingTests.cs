using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Pipeline.Extensions.AI;
using Pipeline.Server;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace Pipeline.Integration.RealModels;

/// <summary>
/// A tiny random Qwen2-layout model with the real Qwen3 tokenizer and chat template, served over
/// a real loopback socket: the shape a user's downloaded Hugging Face folder has.
/// </summary>
public sealed class QwenFolderFixture : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"pipeline-chat-{Guid.NewGuid():N}");

    public string ModelPath => Path.Combine(_root, "qwen");
    public PipelineHost Host { get; private set; } = null!;
    public PipelineServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var tokenizers = Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", "qwen3");
        // Vocabulary past the tokenizer's 151,669 ids, as Qwen pads it; one small layer keeps the file at ~10 MB.
        var spec = new TinySpec { Architecture = "Qwen2ForCausalLM", Dim = 16, Hidden = 24, Layers = 1, Heads = 2, KvHeads = 1, Vocab = 151_680, Tied = true };
        TinyModelFiles.WriteHuggingFace(new TinyModel(spec), ModelPath, eos: [151_645, 151_643]);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(tokenizers, file), Path.Combine(ModelPath, file));
        Host = PipelineHost.Start(new PipelineHostOptions { ModelPath = ModelPath, CacheDirectory = Path.Combine(_root, "cache"), RejectWhenFull = true });
        Server = await PipelineServer.StartAsync(Host, new PipelineServerOptions { Urls = ["http://127.0.0.1:0"] });
    }

    public ChatClient OpenAiChat() => new OpenAIClient(new ApiKeyCredential("none"), new OpenAIClientOptions
    {
        Endpoint = new Uri(Server.Addresses.Single(), "v1"),
        RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
    }).GetChatClient(Host.ModelName);

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Host.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}

public sealed class ChatTemplateServingTests(QwenFolderFixture fixture) : IClassFixture<QwenFolderFixture>
{
    // What Qwen's template renders for one user turn with the assistant's turn opened.
    private const string RenderedHello = "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n";

    [Fact]
    public void Host_loads_a_hugging_face_folder_with_its_template_and_every_configured_end_id()
    {
        Assert.True(fixture.Host.HasChatTemplate);
        var ends = fixture.Host.Model.Tokenizer.EndIds;
        Assert.Contains(151_645, ends); // <|im_end|>: the tokenizer's eos and the config's
        Assert.Contains(151_643, ends); // <|endoftext|>: only config.json names it
    }

    [Fact]
    public async Task Chat_request_prompt_is_the_rendered_template_encoded_without_added_specials()
    {
        var request = fixture.Host.CreateChatRequest([new JsonObject { ["role"] = "user", ["content"] = "Hello!" }]) with { MaxTokens = 1 };

        var result = await fixture.Host.CompleteAsync(request);

        Assert.Equal(fixture.Host.Model.Tokenizer.Encode(RenderedHello, addSpecial: false), result.PromptIds);
        Assert.Equal(151_644, result.PromptIds[0]); // <|im_start|> matched as the special token it is
    }

    [Fact]
    public async Task Chat_completion_over_http_continues_the_rendered_template_as_the_host_does()
    {
#pragma warning disable OPENAI001 // Seed is marked experimental in the client.
        var options = new ChatCompletionOptions { Seed = 11, Temperature = 0.9f, MaxOutputTokenCount = 12 };
        ChatCompletion served = await fixture.OpenAiChat().CompleteChatAsync([ChatMessage.CreateUserMessage("Hello!")], options);
#pragma warning restore OPENAI001

        var solo = await fixture.Host.CompleteAsync(new GenerationRequest
        {
            Prompt = RenderedHello, AddSpecialTokens = false, Seed = 11, MaxTokens = 12, Sampling = new() { Temperature = 0.9f },
        });
        Assert.Equal(solo.Text, served.Content.Count == 0 ? "" : served.Content[0].Text);
        Assert.Equal(solo.PromptIds.Count, served.Usage.InputTokenCount);
    }

    [Fact]
    public async Task Chat_client_renders_the_models_template_too()
    {
        using IChatClient client = new PipelineChatClient(fixture.Host);

        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "Hello!")], new ChatOptions { Seed = 4, Temperature = 0.7f, MaxOutputTokens = 10 });

        var solo = await fixture.Host.CompleteAsync(new GenerationRequest
        {
            Prompt = RenderedHello, AddSpecialTokens = false, Seed = 4, MaxTokens = 10, Sampling = new() { Temperature = 0.7f },
        });
        Assert.Equal(solo.Text, response.Text);
    }
}

/// <summary>A model whose template raises (Gemma 2's, on a system message): the client gets a 400 with the template's message.</summary>
public sealed class RaisingTemplateTests
{
    [Fact]
    public async Task Chat_template_that_raises_answers_400_with_its_message_and_the_server_keeps_serving()
    {
        var root = Path.Combine(Path.GetTempPath(), $"pipeline-raise-{Guid.NewGuid():N}");
        try
        {
            var model = Path.Combine(root, "gemma-like");
            var spm = Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", "spm-bpe-32k");
            TinyModelFiles.WriteHuggingFace(new TinyModel(new TinySpec { Dim = 16, Hidden = 24, Layers = 1, Heads = 2, KvHeads = 1, Vocab = 32_000, Tied = true }), model);
            File.Copy(Path.Combine(spm, "tokenizer.json"), Path.Combine(model, "tokenizer.json"));
            File.Copy(Path.Combine(spm, "tokenizer_config.json"), Path.Combine(model, "tokenizer_config.json"));
            File.Copy(Path.Combine(RepoPaths.Root, "tests", "fixtures", "chat-templates", "google-gemma-2-2b-it.jinja"), Path.Combine(model, "chat_template.jinja"));
            await using var host = PipelineHost.Start(new PipelineHostOptions { ModelPath = model, CacheDirectory = Path.Combine(root, "cache") });
            await using var server = await PipelineServer.StartAsync(host, new PipelineServerOptions { Urls = ["http://127.0.0.1:0"] });
            using var http = new HttpClient { BaseAddress = server.Addresses.Single() };

            var refused = await http.PostAsync("/v1/chat/completions", Json(new { messages = new object[] { new { role = "system", content = "Be brief." }, new { role = "user", content = "Hi" } }, max_tokens = 3 }));
            var accepted = await http.PostAsync("/v1/chat/completions", Json(new { messages = new object[] { new { role = "user", content = "Hi" } }, max_tokens = 3 }));

            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Contains("System role not supported", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}
