using Microsoft.Extensions.Hosting;

namespace Pipeline.Extensions.AI;

/// <summary>
/// Ties the singleton host to the application: resolving it at start loads the model before the
/// first request rather than during it, and stopping the application disposes it (cancelling
/// what still runs and freeing every KV cache) before the container goes.
/// </summary>
internal sealed class PipelineHostLifetime(PipelineHost host) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken) => await host.DisposeAsync();
}
