using ZImage.Runtime.Hosting;
using ZImage.Runtime.Residency;

namespace ZImage.Runtime.Pipeline.Engine;

/// <summary>Builds the engine <see cref="ZImageServiceCollectionExtensions.AddZImage(Microsoft.Extensions.DependencyInjection.IServiceCollection)"/> registers.</summary>
public static class ZImageEngineFactory
{
    /// <summary>
    /// The real engine for <paramref name="options"/>: the checkpoint in <see cref="ZImageOptions.ModelDirectory"/>, or
    /// the tiny random demo model, on the rung of the memory ladder <see cref="ZImageOptions.Residency"/> asks for (with
    /// auto values, the fastest rung whose exact plan of the sizing request, with CFG, fits the device).
    /// </summary>
    /// <exception cref="RungNotAvailableException">A requested rung has not landed.</exception>
    public static ZImageEngine Create(ZImageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var engine = ZImageEngine.Open(string.IsNullOrEmpty(options.ModelDirectory) ? null : options.ModelDirectory, new ZImageEngineOptions
        {
            ForceCpu = options.Device == DevicePreference.Cpu,
            RequireCuda = options.Device == DevicePreference.Cuda,
            DeviceIndex = options.DeviceIndex,
            AllocatorSettings = options.AllocatorSettings ?? "",
            WeightDType = options.WeightDType,
            RandomSeed = options.RandomModelSeed,
            ImageEditing = options.ImageEditing,
            Loras = options.Loras,
            UseStreamOrderedPool = options.MemoryBackend == DeviceMemoryBackendKind.StreamOrderedPool,
            HostMemory = options.Residency.HostMemory,
            PromptCacheBytes = options.Residency.PromptCacheBytes(),
        });
        try
        {
            var (strategy, _) = Choose(engine, options, new GenerationRequest
            {
                Prompt = "", Width = options.Budget.SizingWidth, Height = options.Budget.SizingHeight, Mode = GenerationMode.Standard,
            });
            engine.UseStrategy(strategy, options.Residency.HostMemory);
            return engine;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Chooses the rung for <paramref name="request"/> on <paramref name="engine"/>'s device by planning every candidate
    /// on a planning twin (same config, allocator policy and carve-up options).
    /// </summary>
    public static (ResidencyStrategy Strategy, MemoryPlan Plan) Choose(ZImageEngine engine, ZImageOptions options, GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        var stats = engine.GetMemoryStats();
        var planning = PlanningOptions(options, stats);
        return StrategyChooser.Choose(options.Residency, ZImageEngine.FormatOf(engine.IsDemoWeights ? Compute.TensorDType.F32 : options.WeightDType), s =>
        {
            using var pipeline = new ImagePipeline(engine.CreatePlanner(1L << 50, s), planning);
            return pipeline.Plan(request);
        });
    }

    // The planners' simulated device is unbounded; the carve-up must be the real device's.
    private static ZImageOptions PlanningOptions(ZImageOptions o, EngineMemoryStats stats)
    {
        var budget = new MemoryBudgetOptions
        {
            DeviceMemory = o.Budget.DeviceMemory is { Length: > 0 } d ? d : stats.DeviceTotalBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            SystemReserve = o.Budget.SystemReserve is { Length: > 0 } r ? r
                : o.Budget.DeviceMemory is { Length: > 0 } || stats.DeviceFreeBytes < 0 ? null
                : Math.Max(0, stats.DeviceTotalBytes - stats.DeviceFreeBytes - stats.ReservedBytes).ToString(System.Globalization.CultureInfo.InvariantCulture),
            Inference = o.Budget.Inference,
            Buffer = o.Budget.Buffer,
            SizingWidth = o.Budget.SizingWidth,
            SizingHeight = o.Budget.SizingHeight,
        };
        return new ZImageOptions
        {
            ModelDirectory = o.ModelDirectory, AllocatorSettings = o.AllocatorSettings, Budget = budget, Presets = o.Presets, Limits = o.Limits,
            WeightDType = o.WeightDType, Residency = o.Residency,
        };
    }
}
