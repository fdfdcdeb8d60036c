using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>The real engine (tokenizer, Qwen3, DiT, VAE, caching allocator, ILGPU CPU accelerator) on the tiny checkpoint.</summary>
public class TinyCheckpointTests
{
    private static void Configure(ZImageOptions o)
    {
        o.ModelDirectory = FixturePaths.TinyCheckpoint;
        o.Device = TestDevice.UseCuda ? DevicePreference.Auto : DevicePreference.Cpu;
        o.WeightDType = Runtime.Compute.TensorDType.F32;
        o.Budget.DeviceMemory = "4GiB";
        o.Budget.SystemReserve = "0";
        o.Budget.Buffer = "64MiB";
        o.Budget.SizingWidth = 128;
        o.Budget.SizingHeight = 128;
    }

    [Fact]
    public async Task HostGeneratesWithTheTinyCheckpointAndThePngCarriesTheParameters()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddZImage(Configure);
        using var host = builder.Build();
        await host.StartAsync();
        var pipeline = host.Services.GetRequiredService<IImagePipeline>();
        Assert.IsType<ZImageEngine>(host.Services.GetRequiredService<IGenerationEngine>());
        Assert.False(pipeline.Model.IsDemoModel);

        var request = new GenerationRequest { Prompt = "a lighthouse at dusk", Width = 32, Height = 48, Steps = 2, Guidance = 2f, NegativePrompt = "fog", Seed = 11 };
        var plan = pipeline.Plan(request);
        var result = await pipeline.GenerateAsync(request);

        var image = Assert.Single(result.Images);
        Assert.Equal((32, 48), (image.Width, image.Height));
        byte[] png = result.EncodePng();
        Assert.Equal(image.Pixels, PngMetadata.Decode(png).Pixels);
        Assert.Equal(result.Parameters, PngMetadata.ReadParameters(png));
        Assert.Equal(11, PngMetadata.ReadParameters(png)!.Seed);
        Assert.Contains("fog", PngMetadata.ReadText(png)["parameters"]);

        // The plan made in planning mode on a simulated device is the measured peak, stage by stage.
        Assert.Equal(["text-encoder", "denoise-step-1", "denoise-step-2", "vae-decode"], result.Stages.Select(s => s.Name));
        Assert.Equal(plan.Stages.Select(s => s.PeakBytes), result.Stages.Select(s => s.MeasuredPeakBytes));
        Assert.All(result.Stages, s => Assert.Equal(s.PlannedPeakBytes, s.MeasuredPeakBytes));
        Assert.All(result.Stages, s => Assert.True(s.MeasuredPeakBytes > 0));

        // A warm cache does not change the measured peaks (rounded sizes), and the workspace returns to the pool.
        var again = await pipeline.GenerateAsync(request);
        Assert.Equal(image.Pixels, again.Images[0].Pixels);
        Assert.Equal(result.Stages.Select(s => s.MeasuredPeakBytes), again.Stages.Select(s => s.MeasuredPeakBytes));
        Assert.Equal(MemoryState.Green, pipeline.Memory.State);
        Assert.Equal(0, pipeline.Memory.InferenceInUseBytes);
        Assert.True(pipeline.Memory.BaseBytes > 0);
        await host.StopAsync();
    }

    [Fact]
    public async Task DeviceOutOfMemoryFailsOneRequestAndTheNextSucceeds()
    {
        FailingBackend? failing = null;
        var options = TestPipelines.Options(o => { Configure(o); o.TrimAfterGeneration = true; });
        var engine = ZImageEngine.Open(FixturePaths.TinyCheckpoint, new ZImageEngineOptions
        {
            ForceCpu = true,
            WeightDType = Runtime.Compute.TensorDType.F32,
            BackendDecorator = b => failing = new FailingBackend(b),
        });
        using var pipeline = new ImagePipeline(engine, options);
        await pipeline.StartAsync();
        long baseline = engine.GetMemoryStats().AllocatedBytes;
        // 128x128: the VAE activations exceed 1 MiB, so they need a fresh large-pool segment from the (failing) device.
        var request = new GenerationRequest { Prompt = "x", Width = 128, Height = 128, Steps = 1, Seed = 1 };
        failing!.Armed = true;
        await Assert.ThrowsAsync<DeviceOutOfMemoryException>(() => pipeline.GenerateAsync(request));
        failing.Armed = false;
        Assert.True(failing.Refused > 0);
        Assert.Equal(baseline, engine.GetMemoryStats().AllocatedBytes);
        var next = await pipeline.GenerateAsync(request);
        Assert.Single(next.Images);
        Assert.NotEqual(MemoryState.Red, pipeline.Memory.State);
    }

    [Fact]
    public async Task DemoModelRunsWithoutACheckpoint()
    {
        var options = TestPipelines.Options(o => { o.Device = DevicePreference.Cpu; o.Budget.SizingWidth = 64; o.Budget.SizingHeight = 64; });
        using var pipeline = new ImagePipeline(ZImageEngineFactory.Create(options), options);
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a lighthouse at dusk", Steps = 1, Seed = 3, Width = 32, Height = 32 });
        Assert.True(pipeline.Model.IsDemoModel);
        Assert.Contains("byte-level fallback", pipeline.Model.TokenizerNote);
        Assert.Contains(result.Warnings, w => w.Contains("not image quality"));
        Assert.Equal(result.Stages.Select(s => s.PlannedPeakBytes), result.Stages.Select(s => s.MeasuredPeakBytes));
    }

    [Fact]
    public void TurboPlansWorkWithoutWeights()
    {
        var options = new ZImageOptions();
        options.Budget.DeviceMemory = "24GiB";
        using var pipeline = new ImagePipeline(ZImageEngine.CreatePlanning(Runtime.Models.Configuration.ZImageConfig.Turbo, 24 * ByteSize.GiB), options);
        var plan = pipeline.Plan(new GenerationRequest { Prompt = "a lighthouse at dusk", Width = 768, Height = 768, Mode = GenerationMode.Standard });
        Assert.Equal(1 + 25 + 1, plan.Stages.Count);
        Assert.InRange(plan.BaseBytes, 18L * ByteSize.GiB, 21L * ByteSize.GiB); // bf16: DiT 11.5 GiB + text-encoder layers 0-34 (embedding stays on the host) + VAE decoder
        Assert.True(plan.Stages[1].PeakBytes > plan.Stages[0].PeakBytes);
        Assert.Equal(plan.Stages.Max(s => s.PeakBytes), plan.RequestPeakBytes);
    }
}
