#pragma warning disable MEAI001 // IImageGenerator is experimental in Microsoft.Extensions.AI.Abstractions.
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ZImage.Runtime.Pipeline;

namespace ZImage.Runtime.Hosting;

/// <summary>Registers <see cref="ZImageImageGenerator"/> as the container's <see cref="IImageGenerator"/>.</summary>
public static class ZImageImageGeneratorServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="ZImageImageGenerator"/> over the registered <see cref="IImagePipeline"/> as
    /// <see cref="IImageGenerator"/> (after <c>AddZImage</c>: <c>services.AddZImage(...).AddZImageImageGenerator()</c>).
    /// Idempotent; an <see cref="IImageGenerator"/> registered before is kept.
    /// </summary>
    public static IServiceCollection AddZImageImageGenerator(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(sp => new ZImageImageGenerator(sp.GetRequiredService<IImagePipeline>()));
        services.TryAddSingleton<IImageGenerator>(sp => sp.GetRequiredService<ZImageImageGenerator>());
        return services;
    }
}
