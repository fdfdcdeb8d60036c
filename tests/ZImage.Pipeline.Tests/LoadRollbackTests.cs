using Microsoft.Extensions.Diagnostics.HealthChecks;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>A load that fails or is cancelled half-way is rolled back: nothing stays allocated, health says why, the next start retries.</summary>
public class LoadRollbackTests
{
    private static (ImagePipeline Pipeline, ZImageEngine Engine, FailingBackend Backend) Create()
    {
        FailingBackend? failing = null;
        var options = TestPipelines.Options(o =>
        {
            o.Budget.DeviceMemory = "4GiB";
            o.Budget.SystemReserve = "0";
            o.Budget.Buffer = "64MiB";
            o.Budget.SizingWidth = 32;
            o.Budget.SizingHeight = 32;
        });
        var engine = ZImageEngine.Open(FixturePaths.TinyCheckpoint, new ZImageEngineOptions
        {
            ForceCpu = true,
            WeightDType = Runtime.Compute.TensorDType.F32,
            BackendDecorator = b => failing = new FailingBackend(b),
        });
        return (new ImagePipeline(engine, options), engine, failing!);
    }

    private static Task<HealthCheckResult> Health(ImagePipeline pipeline) =>
        new ZImageHealthCheck(pipeline).CheckHealthAsync(new HealthCheckContext());

    private static readonly GenerationRequest Request = new() { Prompt = "x", Width = 32, Height = 32, Steps = 1, Seed = 1 };

    [Fact]
    public async Task CancellingTheStartInTheMiddleOfTheLoadFreesTheWeightsAndTheRetryLoadsTheWholeModel()
    {
        var (pipeline, engine, backend) = Create();
        using var _ = pipeline;
        using var cts = new CancellationTokenSource();
        backend.BeforeAllocate = cts.Cancel; // the first weight segment: the text encoder is being loaded
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.StartAsync(cts.Token));
        backend.BeforeAllocate = null;

        var stats = engine.Allocator.GetStatistics();
        Assert.Equal(0, stats.AllocatedBytes.Current);
        Assert.Equal(0, stats.ReservedBytes.Current);
        Assert.False(pipeline.IsStarted);
        var health = await Health(pipeline);
        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        Assert.Contains("failed", health.Description);
        Assert.Contains("OperationCanceledException", health.Description);

        var result = await pipeline.GenerateAsync(Request);
        Assert.Single(result.Images);
        Assert.True(pipeline.IsStarted);
        Assert.Null(pipeline.StartFailure);
        Assert.NotEqual(HealthStatus.Unhealthy, (await Health(pipeline)).Status);
    }

    [Fact]
    public async Task DeviceOutOfMemoryDuringTheLoadIsReportedByHealthAndTheLoadCanBeRetried()
    {
        var (pipeline, engine, backend) = Create();
        using var _ = pipeline;
        int calls = 0;
        backend.BeforeAllocate = () => backend.Armed = ++calls > 1; // the first segment succeeds, then the device is full
        await Assert.ThrowsAsync<DeviceOutOfMemoryException>(() => pipeline.StartAsync());
        backend.BeforeAllocate = null;
        backend.Armed = false;

        Assert.True(calls > 1);
        Assert.Equal(0, engine.Allocator.GetStatistics().AllocatedBytes.Current);
        Assert.Equal(0, engine.Allocator.GetStatistics().ReservedBytes.Current);
        var health = await Health(pipeline);
        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        Assert.Contains(nameof(DeviceOutOfMemoryException), health.Description);
        Assert.IsType<DeviceOutOfMemoryException>(pipeline.StartFailure);

        await pipeline.StartAsync();
        Assert.Single((await pipeline.GenerateAsync(Request)).Images);
    }

    [Fact]
    public void AnEngineLoadCancelledHalfWayLeavesTheEngineUnloadedAndTheRetryLoadsEveryWeight()
    {
        FailingBackend? backend = null;
        var options = new ZImageEngineOptions { ForceCpu = true, WeightDType = Runtime.Compute.TensorDType.F32, BackendDecorator = b => backend = new FailingBackend(b) };
        using var engine = ZImageEngine.Open(FixturePaths.TinyCheckpoint, options);
        using var cts = new CancellationTokenSource();
        backend!.BeforeAllocate = cts.Cancel;
        Assert.ThrowsAny<OperationCanceledException>(() => engine.Load(null, cts.Token));
        backend.BeforeAllocate = null;
        Assert.Equal(0, engine.GetMemoryStats().WeightBytes);
        Assert.Equal(0, engine.Allocator.GetStatistics().ReservedBytes.Current);
        Assert.Throws<InvalidOperationException>(() => engine.EncodePrompt([1, 2, 3]));

        engine.Load(null, CancellationToken.None);
        using var reference = ZImageEngine.Open(FixturePaths.TinyCheckpoint, options with { BackendDecorator = null });
        reference.Load(null, CancellationToken.None);
        Assert.Equal(reference.GetMemoryStats().WeightBytes, engine.GetMemoryStats().WeightBytes);
        using var embedding = engine.EncodePrompt([1, 2, 3]);
    }
}
