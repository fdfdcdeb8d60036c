using ZImage.Runtime.Hosting;

namespace ZImage.Runtime.Pipeline.Engine;

/// <summary>Builds the engine <see cref="ZImageServiceCollectionExtensions.AddZImage(Microsoft.Extensions.DependencyInjection.IServiceCollection)"/> registers.</summary>
public static class ZImageEngineFactory
{
    /// <summary>The real engine for <paramref name="options"/>: the checkpoint in <see cref="ZImageOptions.ModelDirectory"/>, or the tiny random demo model.</summary>
    public static ZImageEngine Create(ZImageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return ZImageEngine.Open(string.IsNullOrEmpty(options.ModelDirectory) ? null : options.ModelDirectory, new ZImageEngineOptions
        {
            ForceCpu = options.Device == DevicePreference.Cpu,
            AllocatorSettings = options.AllocatorSettings ?? "",
            WeightDType = options.WeightDType,
            RandomSeed = options.RandomModelSeed,
            UseStreamOrderedPool = options.MemoryBackend == DeviceMemoryBackendKind.StreamOrderedPool,
        });
    }
}
