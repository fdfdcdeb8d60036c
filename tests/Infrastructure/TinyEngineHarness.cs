using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// A started <see cref="ImagePipeline"/> over the real <see cref="ZImageEngine"/> on the tiny checkpoint (CPU
/// accelerator, F32 weights, caching allocator, budget guard), whose device backend is a
/// <see cref="FaultInjectingBackend"/>, whose caching allocator is wrapped (below the guard) by a
/// <see cref="FaultInjectingAllocator"/> and whose engine is seen through a <see cref="StartOrderRecordingEngine"/>. The cache is
/// trimmed after every generation, so each one starts from the same empty cache (fault positions are reproducible)
/// and the baseline after it is exact: allocated = weights, reserved = the weights' segments, live device segments =
/// those segments, no inference bytes in the budget guard.
/// </summary>
public sealed class TinyEngineHarness : IDisposable
{
    private TinyEngineHarness(FaultInjectingBackend backend, FaultInjectingAllocator allocator, ZImageEngine engine, StartOrderRecordingEngine recording, ImagePipeline pipeline)
    {
        Backend = backend;
        Blocks = allocator;
        Engine = engine;
        Recording = recording;
        Pipeline = pipeline;
    }

    public FaultInjectingBackend Backend { get; }
    /// <summary>Block-level faults: wraps the caching allocator below the budget guard.</summary>
    public FaultInjectingAllocator Blocks { get; }
    public ZImageEngine Engine { get; }
    public StartOrderRecordingEngine Recording { get; }
    public ImagePipeline Pipeline { get; }
    public BudgetGuard Guard => Pipeline.Budget ?? throw new InvalidOperationException("The pipeline is not started.");
    public long BaselineAllocated { get; private set; }
    public long BaselineReserved { get; private set; }
    public long BaselineSegments { get; private set; }
    public long BaselineWeights { get; private set; }

    /// <summary>The pipeline options the harness uses (before <paramref name="configure"/>).</summary>
    public static ZImageOptions Options(Action<ZImageOptions>? configure = null)
    {
        var o = new ZImageOptions();
        o.ModelDirectory = FixturePaths.TinyCheckpoint;
        o.Device = DevicePreference.Cpu;
        o.WeightDType = TensorDType.F32;
        o.Budget.DeviceMemory = "4GiB";
        o.Budget.SystemReserve = "0";
        o.Budget.Buffer = "64MiB";
        o.Budget.SizingWidth = 64;
        o.Budget.SizingHeight = 64;
        o.Presets.DefaultResolution = null;
        o.TrimAfterGeneration = true;
        configure?.Invoke(o);
        return o;
    }

    /// <summary>Opens the engine (with the VAE encoder when <paramref name="imageEditing"/>), starts the pipeline and records the baseline.</summary>
    public static async Task<TinyEngineHarness> StartAsync(Action<ZImageOptions>? configure = null, bool imageEditing = false)
    {
        FaultInjectingBackend? backend = null;
        FaultInjectingAllocator? blocks = null;
        var engine = ZImageEngine.Open(FixturePaths.TinyCheckpoint, new ZImageEngineOptions
        {
            ForceCpu = true,
            WeightDType = TensorDType.F32,
            BackendDecorator = b => backend = new FaultInjectingBackend(b),
            AllocatorDecorator = a => blocks = new FaultInjectingAllocator(a),
            ImageEditing = imageEditing,
        });
        var recording = new StartOrderRecordingEngine(engine);
        var pipeline = new ImagePipeline(recording, Options(o => { o.ImageEditing = imageEditing; configure?.Invoke(o); }));
        TinyEngineHarness? harness = null;
        try
        {
            await pipeline.StartAsync();
            harness = new TinyEngineHarness(backend!, blocks!, engine, recording, pipeline);
            engine.EmptyCache();
            harness!.BaselineAllocated = engine.Allocator.AllocatedBytes;
            harness.BaselineReserved = engine.Allocator.ReservedBytes;
            harness.BaselineSegments = backend!.LiveSegments;
            harness.BaselineWeights = harness.Guard.WeightsInUseBytes;
            return harness;
        }
        catch
        {
            pipeline.Dispose();
            throw;
        }
    }

    /// <summary>A small request on the tiny model: 16×32, 2 steps, CFG (two prompts, two predictions per step).</summary>
    public static GenerationRequest Request(long seed = 11, string prompt = "a lighthouse at dusk") =>
        new() { Prompt = prompt, NegativePrompt = "fog", Width = 16, Height = 32, Steps = 2, Guidance = 2f, Mode = GenerationMode.Standard, Seed = seed };

    /// <summary>Takes the current state as the baseline (after a reported violation, so later checks are independent).</summary>
    public void Rebaseline()
    {
        Engine.EmptyCache();
        BaselineAllocated = Engine.Allocator.AllocatedBytes;
        BaselineReserved = Engine.Allocator.ReservedBytes;
        BaselineSegments = Backend.LiveSegments;
        BaselineWeights = Guard.WeightsInUseBytes;
        BaselineInference = Guard.InferenceInUseBytes;
    }

    /// <summary>Inference bytes the guard counts at baseline (0 unless <see cref="Rebaseline"/> took a leak in).</summary>
    public long BaselineInference { get; private set; }

    /// <summary>Null when allocator, device and budget guard are at the baseline; otherwise what differs.</summary>
    public string? BaselineViolation()
    {
        var problems = new List<string>();
        void Check(string what, long expected, long actual)
        {
            if (expected != actual) problems.Add($"{what}: {actual} (baseline {expected})");
        }
        Check("allocator allocated bytes", BaselineAllocated, Engine.Allocator.AllocatedBytes);
        Check("allocator reserved bytes", BaselineReserved, Engine.Allocator.ReservedBytes);
        Check("live device segments", BaselineSegments, Backend.LiveSegments);
        Check("budget inference bytes in use", BaselineInference, Guard.InferenceInUseBytes);
        Check("budget weight bytes in use", BaselineWeights, Guard.WeightsInUseBytes);
        if (BaselineInference == 0 && Pipeline.Memory.State != MemoryState.Green) problems.Add($"memory state {Pipeline.Memory.State}");
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    public void Dispose() => Pipeline.Dispose();
}
