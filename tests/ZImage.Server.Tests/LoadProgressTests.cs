using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;

namespace ZImage.Server.Tests;

/// <summary>IImagePipeline's start with progress and cancellation, on the tiny demo model (the real engine's load).</summary>
public sealed class LoadProgressTests
{
    private static ServiceProvider DemoHost() =>
        new ServiceCollection().AddZImage(o => { o.Budget.DeviceMemory = "64MiB"; o.Budget.SystemReserve = "0"; o.Budget.Buffer = "0"; o.Budget.SizingWidth = 16; o.Budget.SizingHeight = 16; })
            .BuildServiceProvider();

    /// <summary>Records every report with the thread it arrived on; optionally acts on one stage.</summary>
    private sealed class Recorder(Action<LoadProgress>? onReport = null) : IProgress<LoadProgress>
    {
        public List<(LoadProgress Report, int Thread)> Reports { get; } = [];

        public void Report(LoadProgress value)
        {
            Reports.Add((value, Environment.CurrentManagedThreadId));
            onReport?.Invoke(value);
        }
    }

    [Fact]
    public async Task Start_ReportsEveryStageOnce_InOrder_OnTheDeviceThread_AndStateFollows()
    {
        await using var sp = DemoHost();
        var pipeline = sp.GetRequiredService<IImagePipeline>();
        Assert.Equal((PipelineState.NotStarted, (LoadProgress?)null), (pipeline.State, pipeline.LastLoadProgress));

        var recorder = new Recorder(_ => Assert.Equal(PipelineState.Starting, pipeline.State));
        await pipeline.StartAsync(recorder);

        Assert.Equal([LoadStage.TextEncoder, LoadStage.Transformer, LoadStage.Vae, LoadStage.Measuring, LoadStage.Ready], recorder.Reports.Select(r => r.Report.Stage));
        Assert.Equal([0, 1, 2, 3, 4], recorder.Reports.Select(r => r.Report.CompletedStages));
        Assert.Single(recorder.Reports.Select(r => r.Thread).Distinct());
        Assert.NotEqual(Environment.CurrentManagedThreadId, recorder.Reports[0].Thread);
        var resident = recorder.Reports.Select(r => r.Report.ResidentBytes).ToList();
        Assert.Equal(resident.Order(), resident);
        Assert.True(resident[^1] > resident[0], $"resident bytes did not grow during the load: {string.Join(", ", resident)}");
        Assert.Equal(1.0, recorder.Reports[^1].Report.Fraction);
        Assert.Equal((PipelineState.Started, LoadStage.Ready), (pipeline.State, pipeline.LastLoadProgress!.Stage));

        var late = new Recorder();
        await pipeline.StartAsync(late);
        Assert.Empty(late.Reports);
    }

    [Theory]
    [InlineData(LoadStage.Transformer)]
    [InlineData(LoadStage.Vae)]
    public async Task CancelDuringLoad_ReleasesEveryByte_StateFailed_AndTheNextStartSucceeds(LoadStage cancelAt)
    {
        await using var sp = DemoHost();
        var pipeline = sp.GetRequiredService<IImagePipeline>();
        var engine = sp.GetRequiredService<IGenerationEngine>();
        using var cts = new CancellationTokenSource();
        var recorder = new Recorder(r => { if (r.Stage == cancelAt) cts.Cancel(); });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.StartAsync(recorder, cts.Token));

        Assert.Equal(PipelineState.Failed, pipeline.State);
        Assert.DoesNotContain(recorder.Reports, r => r.Report.Stage > cancelAt);
        var stats = engine.GetMemoryStats();
        Assert.Equal((0L, 0L), (stats.ReservedBytes, stats.WeightBytes));

        await pipeline.StartAsync();
        Assert.Equal(PipelineState.Started, pipeline.State);
    }

    [Fact]
    public async Task Create_WithoutDi_StartsWithProgress_AndBadOptionsAreRejectedNamingThem()
    {
        var bad = Assert.Throws<OptionsValidationException>(() => ImagePipeline.Create(new ZImageOptions { ModelDirectory = "/no/such/model" }));
        Assert.Contains("ZImage:ModelDirectory = '/no/such/model'", bad.Message, StringComparison.Ordinal);

        var options = new ZImageOptions();
        options.Budget.DeviceMemory = "64MiB"; options.Budget.SystemReserve = "0"; options.Budget.Buffer = "0";
        options.Budget.SizingWidth = 16; options.Budget.SizingHeight = 16;
        using var pipeline = ImagePipeline.Create(options);
        var recorder = new Recorder();
        await pipeline.StartAsync(recorder);
        Assert.Equal((PipelineState.Started, LoadStage.Ready), (pipeline.State, recorder.Reports[^1].Report.Stage));
        Assert.True(pipeline.Memory.BaseBytes > 0);
    }
}
