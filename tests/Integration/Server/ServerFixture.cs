using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Headers;
using OpenAI;
using Pipeline.Inference.Runtime;
using Pipeline.Server;

namespace Pipeline.Integration.Server;

/// <summary>
/// One real Kestrel server on a free loopback port, shared by a test class: the served host
/// (rejecting when full, as in production), a separate solo host on the same model to compare
/// against, and clients that carry the API key.
/// </summary>
public class ServerFixture : IAsyncLifetime
{
    public const string ApiKey = "test-key";

    internal LoadedModel Model { get; private set; } = null!;
    public PipelineHost Host { get; private set; } = null!;
    /// <summary>Runs one request at a time: the reference a served request must match.</summary>
    public PipelineHost SoloHost { get; private set; } = null!;
    public PipelineServer Server { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;
    /// <summary>Sends the API key on every request.</summary>
    public HttpClient Http { get; private set; } = null!;

    protected virtual string? ServerApiKey => ApiKey;

    private protected virtual PipelineHostOptions HostOptions => new() { RejectWhenFull = true };

    public async Task InitializeAsync()
    {
        Model = LoadedModel.Load(RepoPaths.ModelDir);
        Host = PipelineHost.Start(Model, HostOptions);
        SoloHost = PipelineHost.Start(Model, new PipelineHostOptions { MaxBatch = 1 });
        Server = await PipelineServer.StartAsync(Host, new PipelineServerOptions { Urls = ["http://127.0.0.1:0"], ApiKey = ServerApiKey });
        BaseAddress = Server.Addresses.Single();
        Assert.True(System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(BaseAddress.Host)));
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (ServerApiKey is not null) Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServerApiKey);
    }

    /// <summary>The official OpenAI client pointed at this server; no retries, so error tests see the first answer.</summary>
    public OpenAIClient OpenAi(string? apiKey = ApiKey) => new(new ApiKeyCredential(apiKey ?? "none"), new OpenAIClientOptions
    {
        Endpoint = new Uri(BaseAddress, "v1"),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
    });

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        await Host.DisposeAsync();
        await SoloHost.DisposeAsync();
        Model.Dispose();
    }
}
