namespace Pipeline.Server;

/// <summary>Where the server listens and the limits it holds every connection to.</summary>
public sealed record PipelineServerOptions
{
    /// <summary>Addresses to bind; loopback by default. Port 0 binds a free port (see <see cref="PipelineServer.Addresses"/>).</summary>
    public IReadOnlyList<string> Urls { get; init; } = ["http://127.0.0.1:8080"];
    /// <summary>When set, every /v1 request must carry <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Larger bodies get 413; a prompt for a 512-token model never needs more.</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Sent with 429 when the admission queue is full.</summary>
    public int RetryAfterSeconds { get; init; } = 1;
    /// <summary>Most parallel samples (<c>n</c>) one request may ask for.</summary>
    public int MaxSamplesPerRequest { get; init; } = 16;
}
