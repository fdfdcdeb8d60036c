using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

public class MemoryBudgetTests
{
    [Fact]
    public async Task PlanEqualsMeasuredForEveryStage()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine, o => o.Budget.Inference = "64MiB");
        var request = TestPipelines.Small() with { Mode = GenerationMode.Standard, Steps = 3, Guidance = 3f, NegativePrompt = "dark", NumImages = 2 };
        var plan = pipeline.Plan(request);
        var result = await pipeline.GenerateAsync(request);
        Assert.Equal(["text-encoder", "denoise-step-1", "denoise-step-2", "denoise-step-3", "vae-decode"], plan.Stages.Select(s => s.Name));
        Assert.Equal(plan.Stages.Select(s => s.PeakBytes), result.Stages.Select(s => s.MeasuredPeakBytes));
        Assert.Equal(plan.Stages.Select(s => s.PeakBytes), result.Stages.Select(s => s.PlannedPeakBytes));
        Assert.All(plan.Stages, s => Assert.True(s.PeakBytes > 0));
        Assert.Equal(plan.Stages.Max(s => s.PeakBytes), plan.RequestPeakBytes);
    }

    [Fact]
    public void PlanReportsTheCarveUp()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine(), o => { o.Budget.DeviceMemory = "1GiB"; o.Budget.SystemReserve = "100MiB"; o.Budget.Buffer = "10MiB"; o.Budget.Inference = "200MiB"; });
        var plan = pipeline.Plan(TestPipelines.Small());
        Assert.Equal(ByteSize.GiB, plan.DeviceBytes);
        Assert.Equal(100 * ByteSize.MiB, plan.SystemReserveBytes);
        Assert.Equal(200 * ByteSize.MiB, plan.InferenceBytes);
        Assert.Equal(10 * ByteSize.MiB, plan.BufferBytes);
        Assert.Equal(ByteSize.MiB, plan.BaseBytes); // the fake's weights, measured on the planner
        Assert.Equal(plan.DeviceBytes - 310 * ByteSize.MiB - ByteSize.MiB, plan.FreeBytes);
        Assert.True(plan.Fits);
        Assert.Equal(0, plan.NeedsMoreBytes);
    }

    [Fact]
    public void DerivedInferenceSegmentIsThePlanOfTheSizingRequest()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine(), o => { o.Budget.Inference = null; o.Budget.SizingWidth = 64; o.Budget.SizingHeight = 64; });
        var atSizing = pipeline.Plan(new GenerationRequest { Prompt = new string('x', 600), Width = 64, Height = 64, Mode = GenerationMode.Standard, NegativePrompt = new string('y', 600), Steps = 1 });
        Assert.Equal(atSizing.RequestPeakBytes, atSizing.InferenceBytes);
        Assert.True(atSizing.Fits);
        Assert.False(pipeline.Plan(new GenerationRequest { Prompt = "x", Width = 128, Height = 128 }).Fits);
    }

    [Fact]
    public async Task OverBudgetRequestIsRejectedSayingHowMuchMoreAndWhatFits()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine(), o =>
        {
            o.Budget.Inference = "1MiB";
            o.Presets.Square512 = new() { Width = 64, Height = 64 };
            o.Presets.Square768 = new() { Width = 96, Height = 96 };
        });
        var e = await Assert.ThrowsAsync<RequestExceedsBudgetException>(() => pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 512, Height = 512, Steps = 1 }));
        Assert.Matches(@"needs \d+\.\d\d (KiB|MiB) more than the 1\.00 MiB inference segment", e.Message);
        Assert.Contains("96×96 Turbo", e.Message);
        Assert.True(e.NeedsMoreBytes > 0);
        Assert.Equal(e.Plan.RequestPeakBytes - ByteSize.MiB, e.NeedsMoreBytes);
    }

    [Fact]
    public void OverCommittedDeviceSaysHowMuchMoreItNeeds()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine(), o => { o.Budget.DeviceMemory = "1MiB"; o.Budget.SystemReserve = "256KiB"; o.Budget.Inference = null; });
        var plan = pipeline.Plan(TestPipelines.Small());
        Assert.False(plan.Fits);
        Assert.Equal(0, plan.InferenceBytes); // nothing is left for workspace once the 1 MiB of weights is resident
        Assert.Equal(plan.RequestPeakBytes + 256 * ByteSize.KiB, plan.NeedsMoreBytes);
        Assert.Contains("over-commit the 1.00 MiB device by 256.00 KiB", plan.Describe());
        Assert.StartsWith($"needs {ByteSize.Format(plan.NeedsMoreBytes)} more", plan.Describe());
    }

    [Fact]
    public async Task DownscalePolicyRunsTheLargestFittingPresetWithAWarning()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine(), o =>
        {
            o.Budget.Inference = "1MiB";
            o.Limits.OverBudget = OverBudgetPolicy.Downscale;
            o.Presets.Square512 = new() { Width = 64, Height = 64 };
            o.Presets.Square768 = new() { Width = 96, Height = 96 };
        });
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 512, Height = 512, Steps = 1 });
        Assert.Equal((96, 96), (result.Parameters.Width, result.Parameters.Height));
        Assert.Contains(result.Warnings, w => w.Contains("ran at 96x96") && w.Contains("more than the 1.00 MiB inference segment"));
        Assert.True(result.Plan.Fits);
    }

    [Fact]
    public async Task InjectedAllocatorFaultFailsOneRequestAndTheNextSucceeds()
    {
        var engine = new FakeEngine();
        var logger = new ListLogger<ImagePipeline>();
        using var pipeline = TestPipelines.Create(engine, logger: logger);
        await pipeline.StartAsync();
        long baseline = engine.GetMemoryStats().AllocatedBytes;
        engine.FailAllocationNumber = 5;
        var e = await Assert.ThrowsAsync<DeviceOutOfMemoryException>(() => pipeline.GenerateAsync(TestPipelines.Small()));
        Assert.Contains("injected fault", e.Message);
        Assert.Equal(baseline, engine.GetMemoryStats().AllocatedBytes);
        var next = await pipeline.GenerateAsync(TestPipelines.Small());
        Assert.Single(next.Images);
        Assert.Contains(logger.Entries, x => x.Id.Id == ZImageEventIds.DeviceOutOfMemory);
        Assert.DoesNotContain(logger.Entries, x => x.Id.Id == ZImageEventIds.MemoryDrift);
    }

    [Fact]
    public async Task WorkspaceDriftIsLoggedAsAnError()
    {
        var engine = new FakeEngine { LeakOnePerGeneration = true };
        var logger = new ListLogger<ImagePipeline>();
        using var pipeline = TestPipelines.Create(engine, logger: logger);
        await pipeline.GenerateAsync(TestPipelines.Small());
        var drift = Assert.Single(logger.Entries, x => x.Id.Id == ZImageEventIds.MemoryDrift);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Error, drift.Level);
        Assert.Contains("drift 512 B", drift.Message);
    }

    [Fact]
    public async Task TrimAfterGenerationReturnsTheCacheToTheDevice()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine, o => o.TrimAfterGeneration = true);
        await pipeline.GenerateAsync(TestPipelines.Small());
        var s = engine.GetMemoryStats();
        Assert.Equal(s.AllocatedBytes, s.ReservedBytes);
    }

    [Fact]
    public async Task SameSeedAndParametersGiveTheSameImage()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine());
        var a = await pipeline.GenerateAsync(TestPipelines.Small(seed: 5));
        var b = await pipeline.GenerateAsync(TestPipelines.Small(seed: 5));
        var c = await pipeline.GenerateAsync(TestPipelines.Small(seed: 6));
        Assert.Equal(a.Images[0].Pixels, b.Images[0].Pixels);
        Assert.NotEqual(a.Images[0].Pixels, c.Images[0].Pixels);
    }

    [Fact]
    public async Task InitialLatentsReplaceTheNoise()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine());
        var noise = SeededNoise.Create(5, 16 * 4 * 4);
        var a = await pipeline.GenerateAsync(TestPipelines.Small(seed: 5));
        var b = await pipeline.GenerateAsync(TestPipelines.Small(seed: 999) with { InitialLatents = new LatentTensor(noise, [1, 16, 4, 4]) });
        Assert.Equal(a.Images[0].Pixels, b.Images[0].Pixels);
        Assert.True(b.Parameters.InitialLatentsGiven);
    }
}
