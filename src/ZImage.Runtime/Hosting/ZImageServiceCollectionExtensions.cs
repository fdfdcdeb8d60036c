using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using System.Diagnostics.Metrics;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Runtime.Hosting;

/// <summary>Registers the ZImage pipeline with dependency injection.</summary>
public static class ZImageServiceCollectionExtensions
{
    /// <summary>Adds the pipeline with default options.</summary>
    public static IServiceCollection AddZImage(this IServiceCollection services) => services.AddZImage(static _ => { });

    /// <summary>Adds the pipeline, configured by <paramref name="configure"/>.</summary>
    public static IServiceCollection AddZImage(this IServiceCollection services, Action<ZImageOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<ZImageOptions>().Configure(configure);
        return services.AddZImageCore();
    }

    /// <summary>Adds the pipeline, bound to a configuration section (e.g. <c>configuration.GetSection("ZImage")</c>).</summary>
    public static IServiceCollection AddZImage(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        services.AddOptions<ZImageOptions>().Bind(section);
        return services.AddZImageCore();
    }

    private static IServiceCollection AddZImageCore(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(Marker)))
            return services;
        services.AddSingleton<Marker>();
        services.AddOptions<ZImageOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ZImageOptions>, ZImageOptionsValidator>());
        services.AddMetrics();
        services.TryAddSingleton(sp => new ZImageMetrics(sp.GetRequiredService<IMeterFactory>()));
        services.TryAddSingleton<IGenerationEngine>(sp => ZImageEngineFactory.Create(sp.GetRequiredService<IOptions<ZImageOptions>>().Value));
        services.TryAddSingleton(sp => new ImagePipeline(sp.GetRequiredService<IGenerationEngine>(), sp.GetRequiredService<IOptions<ZImageOptions>>().Value,
            sp.GetService<ILogger<ImagePipeline>>(), sp.GetRequiredService<ZImageMetrics>()));
        services.TryAddSingleton<IImagePipeline>(sp => sp.GetRequiredService<ImagePipeline>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ZImageHostedService>());
        services.TryAddSingleton<ZImageHealthCheck>();
        return services;
    }

    // Present once AddZImage ran, so that repeated calls add only their Configure action.
    private sealed class Marker;

    /// <summary>Adds <see cref="ZImageHealthCheck"/> to the health checks (tags: <c>zimage</c>, <c>memory</c>).</summary>
    public static IHealthChecksBuilder AddZImageHealthCheck(this IHealthChecksBuilder builder, string name = "zimage", HealthStatus? failureStatus = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddCheck<ZImageHealthCheck>(name, failureStatus, ["zimage", "memory"]);
    }
}
