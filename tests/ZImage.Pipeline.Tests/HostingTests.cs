using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

public class HostingTests
{
    private static IHost BuildHost(FakeEngine engine, Action<ZImageOptions>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton<IGenerationEngine>(engine);
        builder.Services.AddZImage(o =>
        {
            var t = TestPipelines.Options();
            o.Budget = t.Budget;
            configure?.Invoke(o);
        });
        builder.Services.AddHealthChecks().AddZImageHealthCheck();
        return builder.Build();
    }

    [Fact]
    public void RegistrationIsIdempotent()
    {
        var services = new ServiceCollection();
        services.AddZImage(o => o.Queue.Capacity = 3);
        int count = services.Count;
        services.AddZImage(o => o.Queue.Capacity = 3);
        Assert.Single(services, d => d.ServiceType == typeof(IImagePipeline));
        Assert.Single(services, d => d.ServiceType == typeof(IHostedService) && d.ImplementationType == typeof(ZImageHostedService));
        Assert.Single(services, d => d.ServiceType == typeof(IValidateOptions<ZImageOptions>) && d.ImplementationType == typeof(ZImageOptionsValidator));
        Assert.Equal(count + 1, services.Count); // only the second Configure action was added; the parameterless overload adds a no-op one
    }

    [Fact]
    public async Task HostStartLoadsTheModelAndTheHealthCheckReportsTheMemoryState()
    {
        var engine = new FakeEngine();
        using var host = BuildHost(engine);
        await host.StartAsync();
        Assert.Equal(1, engine.LoadCount);
        var pipeline = host.Services.GetRequiredService<IImagePipeline>();
        Assert.Same(pipeline, host.Services.GetRequiredService<ImagePipeline>());
        Assert.Equal(Runtime.Budget.MemoryState.Green, pipeline.Memory.State);
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Equal(1L << 30, (long)report.Entries["zimage"].Data["device_bytes"]);
        await host.StopAsync();
    }

    [Fact]
    public async Task InvalidOptionsFailAtStartNamingValueAndRange()
    {
        using var host = BuildHost(new FakeEngine(), o => { o.Limits.MaxSteps = 0; o.Queue.Capacity = 0; o.AllocatorSettings = "max_split_size_mb:abc"; });
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(e.Failures, f => f.Contains("ZImage:Queue:Capacity = 0") && f.Contains("1..100000"));
        Assert.Contains(e.Failures, f => f.Contains("ZImage:Limits:MaxSteps = 0"));
        Assert.Contains(e.Failures, f => f.Contains("ZImage:AllocatorSettings = 'max_split_size_mb:abc'"));
    }

    [Fact]
    public void OptionsBindFromAConfigurationSection()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ZImage:Queue:Capacity"] = "3",
            ["ZImage:Queue:FullPolicy"] = "Reject",
            ["ZImage:Limits:OutOfRange"] = "ResetToStandard", // not the default, so the binding is what sets it
            ["ZImage:Presets:Standard:Steps"] = "20",
            ["ZImage:Budget:Inference"] = "2GiB",
            ["ZImage:TrimAfterGeneration"] = "true",
        }).Build();
        var services = new ServiceCollection();
        services.AddZImage(config.GetSection("ZImage"));
        using var sp = services.BuildServiceProvider();
        var o = sp.GetRequiredService<IOptions<ZImageOptions>>().Value;
        Assert.Equal((3, QueueFullPolicy.Reject, OutOfRangePolicy.ResetToStandard, 20, "2GiB", true),
            (o.Queue.Capacity, o.Queue.FullPolicy, o.Limits.OutOfRange, o.Presets.Standard.Steps, o.Budget.Inference, o.TrimAfterGeneration));
    }

    [Fact]
    public async Task MetricsCountGenerationsRejectionsResetsAndStepDurations()
    {
        var engine = new FakeEngine();
        using var host = BuildHost(engine, o => o.Limits.OutOfRange = OutOfRangePolicy.ResetToStandard);
        var measurements = new List<(string Name, double Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) => { if (i.Meter.Name == ZImageMetrics.MeterName) l.EnableMeasurementEvents(i); };
        listener.SetMeasurementEventCallback<long>((i, v, _, _) => { lock (measurements) measurements.Add((i.Name, v)); });
        listener.SetMeasurementEventCallback<double>((i, v, _, _) => { lock (measurements) measurements.Add((i.Name, v)); });
        listener.Start();
        await host.StartAsync();
        var pipeline = host.Services.GetRequiredService<IImagePipeline>();
        await pipeline.GenerateAsync(TestPipelines.Small() with { Steps = 2 });
        await pipeline.GenerateAsync(TestPipelines.Small() with { Steps = 99, Width = 16, Height = 16 });
        await Assert.ThrowsAsync<InvalidGenerationRequestException>(() => pipeline.GenerateAsync(TestPipelines.Small() with { Width = 33 }));
        listener.RecordObservableInstruments();
        lock (measurements)
        {
            Assert.Equal(2, measurements.Count(m => m.Name == "zimage.generations"));
            Assert.Single(measurements, m => m.Name == "zimage.requests.reset");
            Assert.Single(measurements, m => m.Name == "zimage.requests.rejected");
            Assert.Equal(2 + 25, measurements.Count(m => m.Name == "zimage.step.duration"));
            Assert.Contains(measurements, m => m.Name == "zimage.memory.inference" && m.Value > 0);
            Assert.Contains(measurements, m => m.Name == "zimage.memory.base" && m.Value == 1 << 20);
            foreach (var gauge in new[] { "device", "system_reserve", "buffer", "free", "workspace_in_use", "reserved" })
                Assert.Contains(measurements, m => m.Name == "zimage.memory." + gauge);
        }
        await host.StopAsync();
    }
}
