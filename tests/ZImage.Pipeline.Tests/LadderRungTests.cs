using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Vae;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Runtime.Residency;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>
/// The lossy and workspace rungs of the memory ladder on the tiny checkpoint (real kernels): 8-bit weights, VAE
/// tiling and the prompt-embedding cache, each planned exactly (measured per-stage peaks = plan, cold and warm).
/// </summary>
public class LadderRungTests
{
    private static ZImageOptions Tiny(Action<ResidencyOptions> residency) => TestPipelines.Options(o =>
    {
        o.ModelDirectory = FixturePaths.TinyCheckpoint;
        o.Device = DevicePreference.Cpu;
        o.WeightDType = Runtime.Compute.TensorDType.F32;
        o.Budget.DeviceMemory = "4GiB";
        o.Budget.Buffer = "64MiB";
        residency(o.Residency);
    });

    private static readonly ZImageConfig TinyConfig = ZImageConfig.Load(FixturePaths.TinyCheckpoint);

    private static GenerationRequest Guided(int size = 32) =>
        new() { Prompt = "a lighthouse at dusk", NegativePrompt = "fog", Width = size, Height = size, Steps = 1, Guidance = 2f, Seed = 5 };

    // Plans, runs the request cold and warm, checks measured = planned, and reports the engine's weight and DiT-ring host bytes (the pipeline disposes the engine).
    private static async Task<(GenerationResult Cold, GenerationResult Warm, MemoryPlan Plan, long WeightBytes, long DitHostBytes)> RunTwice(ZImageOptions options, GenerationRequest request)
    {
        var engine = ZImageEngineFactory.Create(options);
        using var pipeline = new ImagePipeline(engine, options);
        await pipeline.StartAsync();
        var plan = pipeline.Plan(request);
        var cold = await pipeline.GenerateAsync(request);
        var warm = await pipeline.GenerateAsync(request);
        Assert.Equal(plan.Stages.Select(s => s.PeakBytes), cold.Stages.Select(s => s.MeasuredPeakBytes));
        Assert.Equal(plan.Stages.Select(s => s.PeakBytes), warm.Stages.Select(s => s.MeasuredPeakBytes));
        Assert.Equal(plan.BaseBytes, pipeline.Memory.BaseBytes);
        return (cold, warm, plan, engine.GetMemoryStats().WeightBytes, engine.TransformerStreaming.HostBytes);
    }

    [Fact]
    public async Task Int8WeightsAreResidentOrStreamedWithOneImageAndTheirPlannedPeaks()
    {
        byte[]? resident = null;
        long? residentWeights = null; // the real config's int8 base is asserted in ResidencyLadderTests (tiny weights drown in 512-B rounding)
        foreach (var offload in new[] { OffloadMode.None, OffloadMode.All })
        {
            var (cold, warm, plan, weightBytes, ditHost) = await RunTwice(Tiny(r => { r.Offload = offload; r.Weights = WeightFormat.Int8; }), Guided());
            Assert.Equal((offload, WeightFormat.Int8), (plan.Strategy!.Offload, plan.Strategy.Weights));
            resident ??= cold.Images[0].Pixels;
            residentWeights ??= weightBytes;
            // Streaming int8 blocks through the ring hands the same codes and scales to the same kernels.
            Assert.Equal(resident, cold.Images[0].Pixels);
            Assert.Equal(resident, warm.Images[0].Pixels);
            if (offload == OffloadMode.All) Assert.Equal(ditHost, plan.UploadedBytesPerStep);
        }
        Assert.True(residentWeights > 0);
    }

    [Fact]
    public async Task TheVaeTilingRungDecodesTiledWithItsPlannedPeaksAndLessWorkspace()
    {
        // 64×64 px = 8×8 latents; 32 px tiles (4 latents, the minimum) split the decode into overlapping tiles.
        var request = Guided(64);
        var (cold, _, plan, _, _) = await RunTwice(Tiny(r => { r.Offload = OffloadMode.TextEncoder; r.VaeTiling = VaeTilingMode.On; r.VaeTileSize = 32; }), request);
        Assert.True(plan.Strategy!.VaeTiling);
        Assert.Contains("vae tiling on (32 px tiles)", plan.Strategy.Describe());
        var untiledOptions = Tiny(r => { r.Offload = OffloadMode.TextEncoder; r.VaeTiling = VaeTilingMode.Off; });
        using var untiled = new ImagePipeline(ZImageEngine.CreatePlanning(TinyConfig, 4 * ByteSize.GiB, matrixDType: Runtime.Compute.TensorDType.F32,
            strategy: new ResidencyStrategy(OffloadMode.TextEncoder, WeightFormat.F32, ActivationFormat.F32, false, "")), untiledOptions);
        var untiledPlan = untiled.Plan(request);
        Assert.True(cold.Images[0].Pixels.Length == 64 * 64 * 3);
    }

    [Fact]
    public async Task ARepeatedPromptSkipsTheTextEncoderAndItsPlanOnTheWarmCacheIsExact()
    {
        var options = Tiny(r => { r.Offload = OffloadMode.None; r.PromptCache = "1MiB"; });
        var engine = ZImageEngineFactory.Create(options);
        using var pipeline = new ImagePipeline(engine, options);
        await pipeline.StartAsync();
        var request = Guided();
        var coldPlan = pipeline.Plan(request);
        var cold = await pipeline.GenerateAsync(request);
        Assert.Equal(2, engine.TextEncoderRuns); // positive and negative
        var warmPlan = pipeline.Plan(request);
        var warm = await pipeline.GenerateAsync(request);
        Assert.Equal(2, engine.TextEncoderRuns); // both hit the cache
        Assert.Equal(2, engine.PromptCache!.Hits);
        Assert.Equal(cold.Images[0].Pixels, warm.Images[0].Pixels);
        Assert.Equal(coldPlan.Stages.Select(s => s.PeakBytes), cold.Stages.Select(s => s.MeasuredPeakBytes));
        Assert.Equal(warmPlan.Stages.Select(s => s.PeakBytes), warm.Stages.Select(s => s.MeasuredPeakBytes));
        long Te(MemoryPlan p) => p.Stages.Single(s => s.Name == "text-encoder").PeakBytes;
        Assert.True(Te(warmPlan) < Te(coldPlan), $"warm {Te(warmPlan)} B vs cold {Te(coldPlan)} B");
        Assert.Equal(ByteSize.MiB, warmPlan.HostBytes); // the cache's capacity is host memory of the plan

        // Negative = positive: the second encode of the same request hits what the first added, in the plan too.
        var same = Guided() with { Prompt = "a red kite", NegativePrompt = "a red kite" };
        var samePlan = pipeline.Plan(same);
        var sameRun = await pipeline.GenerateAsync(same);
        Assert.Equal(3, engine.TextEncoderRuns);
        Assert.Equal(samePlan.Stages.Select(s => s.PeakBytes), sameRun.Stages.Select(s => s.MeasuredPeakBytes));
    }

    [Fact]
    public void ThePromptCacheEvictsTheLeastRecentlyUsedAndRejectsSizesOutsideItsBounds()
    {
        var cache = new PromptEmbeddingCache(2 * 4 * 8); // room for two [2,4] embeddings
        float[] e = new float[8];
        cache.Add([1], e, [2, 4]);
        cache.Add([2], e, [2, 4]);
        Assert.True(cache.TryGet([1], out _, out _)); // 1 is now the most recent
        cache.Add([3], e, [2, 4]);                     // evicts 2
        Assert.False(cache.TryGet([2], out _, out _));
        Assert.True(cache.TryGet([3], out var values, out var shape));
        Assert.Same(e, values);
        Assert.Equal([2, 4], shape);
        Assert.Equal(64, cache.UsedBytes);
        var mirror = cache.Mirror();
        Assert.True(mirror.TryGet([1], out var none, out _));
        Assert.Null(none);
        cache.Add([9], new float[100], [100]); // larger than the capacity: not cached, nothing evicted
        Assert.Equal(2, cache.Count);

        var big = Assert.Throws<ArgumentOutOfRangeException>(() => new ResidencyOptions { PromptCache = "17GiB" }.PromptCacheBytes());
        Assert.Contains("16 GiB", big.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResidencyOptions { PromptCache = "lots" }.PromptCacheBytes());
        Assert.Equal(0, new ResidencyOptions { PromptCache = "none" }.PromptCacheBytes());
        Assert.Equal(64 * ByteSize.MiB, new ResidencyOptions { PromptCache = "64MiB" }.PromptCacheBytes());
    }

    [Fact]
    public void TheChooserOrderIsResidentThenTextEncoderThenTilingThenFullOffloadAndLossyOnlyWhenAllowed()
    {
        static string Names(IEnumerable<ResidencyStrategy> c) => string.Join(" > ", c.Select(StrategyChooser.Spell));
        Assert.Equal("everything resident > --offload text-encoder > --offload text-encoder --vae-tiling on --vae-tile-size 512 > "
            + "--offload text-encoder --vae-tiling on --vae-tile-size 256 > --offload all > --offload all --vae-tiling on --vae-tile-size 512 > "
            + "--offload all --vae-tiling on --vae-tile-size 256", Names(StrategyChooser.Candidates(new ResidencyOptions(), WeightFormat.BF16)));
        Assert.All(StrategyChooser.Candidates(new ResidencyOptions(), WeightFormat.BF16), c => Assert.False(c.IsLossy));
        var lossy = StrategyChooser.Candidates(new ResidencyOptions { AllowLossy = true }, WeightFormat.BF16);
        // Lossy allowed: int8 resident / text-encoder / tiled come before full offload (which uploads the DiT every step).
        Assert.Equal(["none", "text-encoder", "text-encoder", "text-encoder", "none", "text-encoder", "text-encoder", "text-encoder"],
            lossy.Take(8).Select(c => c.OffloadName));
        Assert.Equal([false, false, false, false, true, true, true, true], lossy.Take(8).Select(c => c.IsLossy));
        Assert.All(lossy.Skip(8), c => Assert.Equal(OffloadMode.All, c.Offload));
        Assert.All(StrategyChooser.Candidates(new ResidencyOptions { VaeTiling = VaeTilingMode.Off }, WeightFormat.BF16), c => Assert.False(c.VaeTiling));
        Assert.All(StrategyChooser.Candidates(new ResidencyOptions { VaeTiling = VaeTilingMode.On }, WeightFormat.BF16), c => Assert.True(c.VaeTiling));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(0)]
    [InlineData(40)]
    public void AVaeTileBelowTheLatentMinimumOrThatDoesNotTileIsATypedError(int tile)
    {
        var e = Assert.Throws<VaeTileSizeException>(() => StrategyChooser.Candidates(new ResidencyOptions { VaeTileSize = tile }, WeightFormat.BF16));
        Assert.NotNull(e.ParamName);
        Assert.Throws<VaeTileSizeException>(() => ZImageEngine.CreatePlanning(ZImageConfig.Turbo, ByteSize.GiB,
            strategy: new ResidencyStrategy(OffloadMode.None, WeightFormat.BF16, ActivationFormat.F32, true, "") { VaeTileSize = tile }));
    }
}
