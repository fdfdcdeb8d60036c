using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Runtime.Residency;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>The memory ladder: offload rungs on the tiny checkpoint (real kernels) and the auto chooser on the real Turbo config (plans).</summary>
public class ResidencyLadderTests
{
    private static ZImageOptions TinyOptions(OffloadMode offload, string? hostMemory = null) => TestPipelines.Options(o =>
    {
        o.ModelDirectory = FixturePaths.TinyCheckpoint;
        o.Device = DevicePreference.Cpu;
        o.WeightDType = Runtime.Compute.TensorDType.F32;
        o.Budget.DeviceMemory = "4GiB";
        o.Budget.Buffer = "64MiB";
        o.Residency.Offload = offload;
        o.Residency.HostMemory = hostMemory;
    });

    // CFG with a negative prompt so the guided (paired) DiT forward runs; one step keeps the CPU cost down.
    private static GenerationRequest Guided => new() { Prompt = "a lighthouse at dusk", NegativePrompt = "fog", Width = 32, Height = 32, Steps = 1, Guidance = 2f, Seed = 5 };

    [Fact]
    public async Task OffloadRungsGiveTheResidentImageAndTheirPlannedPeaksColdAndWarm()
    {
        byte[]? resident = null;
        foreach (var offload in new[] { OffloadMode.None, OffloadMode.TextEncoder, OffloadMode.All })
        {
            var options = TinyOptions(offload);
            var engine = ZImageEngineFactory.Create(options);
            using var pipeline = new ImagePipeline(engine, options);
            await pipeline.StartAsync();
            Assert.Equal(offload, engine.Strategy.Offload);
            var plan = pipeline.Plan(Guided);
            long uploadsBefore = engine.TransformerStreaming.UploadedBytes;
            var cold = await pipeline.GenerateAsync(Guided);
            long uploadedPerStep = (engine.TransformerStreaming.UploadedBytes - uploadsBefore) / Guided.Steps!.Value;
            var warm = await pipeline.GenerateAsync(Guided);

            resident ??= cold.Images[0].Pixels;
            Assert.Equal(resident, cold.Images[0].Pixels);
            Assert.Equal(resident, warm.Images[0].Pixels);
            Assert.Equal(plan.Stages.Select(s => s.PeakBytes), cold.Stages.Select(s => s.MeasuredPeakBytes));
            Assert.Equal(plan.Stages.Select(s => s.PeakBytes), warm.Stages.Select(s => s.MeasuredPeakBytes));
            Assert.Equal(plan.BaseBytes, pipeline.Memory.BaseBytes);
            Assert.Equal(plan.UploadedBytesPerStep, uploadedPerStep);
            Assert.Equal(offload, plan.Strategy!.Offload);
            if (offload == OffloadMode.All)
            {
                // Both CFG branches share one upload of every block per step: exactly the DiT's streamed bytes.
                Assert.Equal(engine.TransformerStreaming.HostBytes, uploadedPerStep);
                Assert.True(uploadedPerStep > 0);
            }
            else Assert.Equal(0, uploadedPerStep);
            Assert.Equal(offload == OffloadMode.None ? 0 : engine.Streaming.HostBytes + engine.Streaming.StagingBytes, plan.HostBytes);
        }
    }

    [Fact]
    public async Task OffloadRefusesWhenTheHostLacksTheMemoryAndLeavesNothingAllocated()
    {
        var options = TinyOptions(OffloadMode.TextEncoder, hostMemory: "1KiB");
        var engine = ZImageEngineFactory.Create(options);
        using var pipeline = new ImagePipeline(engine, options);
        var e = await Assert.ThrowsAsync<InsufficientHostMemoryException>(() => pipeline.StartAsync());
        Assert.Contains("--offload text-encoder", e.Message);
        Assert.Contains("1.00 KiB", e.Message);
        Assert.Equal(1024, e.AvailableBytes);
        Assert.True(e.NeededBytes > e.AvailableBytes);
        Assert.Equal(0, engine.GetMemoryStats().AllocatedBytes);
    }

    [Fact]
    public void AutoOnTheTurboConfigAt1024FitsEveryCardDownTo6GiB()
    {
        var request = new GenerationRequest { Prompt = "a lighthouse at dusk", Width = 1024, Height = 1024, Mode = GenerationMode.Turbo };
        var chosen = new Dictionary<int, ResidencyStrategy>();
        foreach (int gib in new[] { 24, 16, 12, 8, 6 })
        {
            long device = gib * ByteSize.GiB;
            var options = new ZImageOptions();
            options.Budget.DeviceMemory = $"{gib}GiB";
            options.Residency.HostMemory = "64GiB";
            var (strategy, plan) = StrategyChooser.Choose(options.Residency, WeightFormat.BF16, s =>
            {
                using var p = new ImagePipeline(ZImageEngine.CreatePlanning(ZImageConfig.Turbo, device, strategy: s), options);
                return p.Plan(request);
            });
            Assert.True(plan.Fits, $"{gib} GiB: {plan.Describe()} ({strategy.Reason})");
            Assert.Equal(strategy, plan.Strategy);
            chosen[gib] = strategy;
        }
        Assert.Equal((OffloadMode.None, WeightFormat.BF16), (chosen[24].Offload, chosen[24].Weights));
        Assert.Equal((OffloadMode.TextEncoder, WeightFormat.BF16), (chosen[16].Offload, chosen[16].Weights));
        Assert.All(chosen.Values, s => Assert.Equal(WeightFormat.BF16, s.Weights)); // no 8-bit weights anywhere
        Assert.Equal(OffloadMode.All, chosen[6].Offload);
        Assert.Contains("--offload text-encoder fits", chosen[16].Reason);
    }

    [Fact]
    public void EightBitWeightsHalveTheBaseAndWithTilingKeepTheDiTResidentOn12And8GiB()
    {
        var request = new GenerationRequest { Prompt = "a lighthouse at dusk", Width = 1024, Height = 1024, Mode = GenerationMode.Turbo };
        (ResidencyStrategy Strategy, MemoryPlan Plan) Choose(int gib, Action<ResidencyOptions> set)
        {
            var options = new ZImageOptions();
            options.Budget.DeviceMemory = $"{gib}GiB";
            options.Residency.HostMemory = "64GiB";
            set(options.Residency);
            var (strategy, plan) = StrategyChooser.Choose(options.Residency, WeightFormat.BF16, s =>
            {
                using var p = new ImagePipeline(ZImageEngine.CreatePlanning(ZImageConfig.Turbo, gib * ByteSize.GiB, strategy: s), options);
                return p.Plan(request);
            });
            Assert.True(plan.Fits, $"{gib} GiB: {plan.Describe()} ({strategy.Reason})");
            return (strategy, plan);
        }
        var (resident8, plan8) = Choose(24, r => r.Weights = WeightFormat.Int8);
        Assert.Equal((OffloadMode.None, WeightFormat.Int8), (resident8.Offload, resident8.Weights));
        var (_, bf16) = Choose(24, _ => { });
        Assert.True(plan8.BaseBytes < bf16.BaseBytes * 0.55, $"int8 base {ByteSize.Format(plan8.BaseBytes)} vs bf16 {ByteSize.Format(bf16.BaseBytes)}");
        var (at12, _) = Choose(12, r => r.Weights = WeightFormat.Int8);
        Assert.Equal((OffloadMode.TextEncoder, false), (at12.Offload, at12.VaeTiling));
        // 8 GiB: the untiled decode (2.5 GiB) does not fit next to the int8 DiT; 256 px tiles do, so the DiT stays resident.
        var (at8, p8) = Choose(8, r => r.AllowLossy = true);
        Assert.Equal((OffloadMode.TextEncoder, WeightFormat.Int8, true, 256), (at8.Offload, at8.Weights, at8.VaeTiling, at8.VaeTileSize));
        Assert.Equal(0, p8.UploadedBytesPerStep);
        Assert.Contains("--offload text-encoder --weights int8 --vae-tiling on --vae-tile-size 256 fits", at8.Reason);
        // Without --allow-lossy auto stays lossless (full offload) on 8 GiB.
        Assert.Equal((OffloadMode.All, WeightFormat.BF16), (Choose(8, _ => { }).Strategy.Offload, Choose(8, _ => { }).Strategy.Weights));
    }

    [Theory]
    [InlineData("sometimes", "--offload")]
    [InlineData("int4", "--weights")]
    public void UnknownRungValuesAreTypedErrorsNamingTheAllowedValues(string value, string option)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ = option == "--offload" ? (object)ResidencyNames.ParseOffload(value) : ResidencyNames.ParseWeights(value));
        Assert.Contains(value, e.Message);
        Assert.Contains(option == "--offload" ? ResidencyNames.OffloadValues : ResidencyNames.WeightValues, e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ResidencyNames.ParseActivations("f64"));
        Assert.Throws<ArgumentOutOfRangeException>(() => ResidencyNames.ParseTiling("maybe"));
        Assert.Throws<ArgumentOutOfRangeException>(() => ResidencyNames.ParseDType("int8"));
    }

    [Fact]
    public void Bf16ActivationsHaveNotLandedAndAreATypedNotAvailableError()
    {
        var e = Assert.Throws<RungNotAvailableException>(() => StrategyChooser.Candidates(new ResidencyOptions { Activations = ActivationFormat.BF16 }, WeightFormat.BF16));
        Assert.Equal("bf16", e.Value);
        Assert.Contains("not available yet", e.Message);
        Assert.Throws<RungNotAvailableException>(() => ResidencyNames.ParseDType("f16"));
        Assert.Throws<RungNotAvailableException>(() => ZImageEngine.Open(null, new ZImageEngineOptions
        {
            ForceCpu = true, Strategy = new ResidencyStrategy(OffloadMode.None, WeightFormat.Fp8, ActivationFormat.BF16, false, ""),
        }));
        // The 8-bit and tiling rungs have landed: they are candidates now.
        Assert.All(StrategyChooser.Candidates(new ResidencyOptions { Weights = WeightFormat.Int8 }, WeightFormat.BF16), c => Assert.Equal(WeightFormat.Int8, c.Weights));
        Assert.All(StrategyChooser.Candidates(new ResidencyOptions { VaeTiling = VaeTilingMode.On }, WeightFormat.BF16), c => Assert.True(c.VaeTiling));
    }
}
