using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Pipeline.Extensions.AI;

public static class PipelineServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="PipelineHost"/> as a singleton that lives as long as the
    /// application (a hosted service starts it with the app and disposes it on stop), and an
    /// <see cref="IChatClient"/> over it.
    /// </summary>
    public static IServiceCollection AddPipeline(this IServiceCollection services, Action<PipelineServiceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new PipelineServiceOptions();
        configure?.Invoke(options);
        services.AddSingleton(_ => options.Model is { } model ? PipelineHost.Start(model, options.Host) : PipelineHost.Start(options.Host));
        services.AddHostedService<PipelineHostLifetime>();
        services.AddSingleton<IChatClient>(provider => new PipelineChatClient(provider.GetRequiredService<PipelineHost>()));
        return services;
    }
}
