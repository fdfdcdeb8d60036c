using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

public class CancellationTests
{
    [Theory]
    [InlineData("text-encoder")]
    [InlineData("denoise")]
    [InlineData("vae-decode")]
    public async Task CancellingInsideAStageReleasesEverythingAndTheNextRequestRuns(string stage)
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine);
        await pipeline.StartAsync();
        long baseline = engine.GetMemoryStats().AllocatedBytes;
        var gate = new StageGate(stage);
        engine.Gate = gate;
        using var cts = new CancellationTokenSource();
        var task = pipeline.GenerateAsync(TestPipelines.Small() with { Steps = 4, Mode = GenerationMode.Standard, Guidance = 2f }, null, cts.Token);
        await gate.Entered.Task;
        cts.Cancel();
        gate.Release.Set();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        engine.Gate = null;
        Assert.Equal(baseline, engine.GetMemoryStats().AllocatedBytes);
        var next = await pipeline.GenerateAsync(TestPipelines.Small());
        Assert.Single(next.Images);
    }

    [Fact]
    public async Task CancellingAQueuedRequestRemovesItWithoutRunningIt()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine);
        var (running, gate) = await TestPipelines.StartWithOneBlockedAsync(pipeline, engine);
        using var cts = new CancellationTokenSource();
        var p = new RecordingProgress();
        var queued = pipeline.GenerateAsync(TestPipelines.Small(seed: 2), p, cts.Token);
        var after = pipeline.GenerateAsync(TestPipelines.Small(seed: 3));
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        gate.Release.Set();
        await running;
        Assert.Equal(3, (await after).Seed);
        Assert.DoesNotContain(p.Reports, r => r.Stage != GenerationStage.Queued);
        Assert.Equal(2, engine.DecodeCount);
    }

    [Fact]
    public async Task AlreadyCancelledTokenThrowsAtOnce()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.GenerateAsync(TestPipelines.Small(), null, new CancellationToken(true)));
    }
}
