using Microsoft.Extensions.Logging;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests.Infrastructure;

/// <summary>Builds pipelines over a <see cref="FakeEngine"/> with small defaults.</summary>
public static class TestPipelines
{
    public static ZImageOptions Options(Action<ZImageOptions>? configure = null)
    {
        var o = new ZImageOptions();
        o.Budget.DeviceMemory = "1GiB";
        o.Budget.SystemReserve = "0";
        o.Budget.Buffer = "0";
        o.Budget.SizingWidth = 64;
        o.Budget.SizingHeight = 64;
        o.Presets.DefaultResolution = null;
        configure?.Invoke(o);
        return o;
    }

    public static ImagePipeline Create(FakeEngine engine, Action<ZImageOptions>? configure = null, ILogger<ImagePipeline>? logger = null, ZImageMetrics? metrics = null)
        => new(engine, Options(configure), logger, metrics);

    /// <summary>A small Turbo request (32×32, 2 steps).</summary>
    public static GenerationRequest Small(string prompt = "a lighthouse at dusk", long seed = 7) =>
        new() { Prompt = prompt, Width = 32, Height = 32, Steps = 2, Seed = seed };

    /// <summary>
    /// Starts <paramref name="pipeline"/> and one small request (seed 1) that holds the device inside the text encoder
    /// until the returned gate's <see cref="StageGate.Release"/> is set; later requests pass the stage freely.
    /// </summary>
    public static async Task<(Task<GenerationResult> Running, StageGate Gate)> StartWithOneBlockedAsync(ImagePipeline pipeline, FakeEngine engine)
    {
        await pipeline.StartAsync();
        var gate = new StageGate("text-encoder");
        engine.Gate = gate;
        var running = pipeline.GenerateAsync(Small(seed: 1));
        await gate.Entered.Task;
        engine.Gate = null;
        return (running, gate);
    }
}

/// <summary>Collects log entries (level, event id, message).</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    public List<(LogLevel Level, EventId Id, string Message)> Entries { get; } = new();
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Entries) Entries.Add((logLevel, eventId, formatter(state, exception)));
    }
}

/// <summary>An IProgress that records synchronously (Progress&lt;T&gt; would post to the thread pool).</summary>
public sealed class RecordingProgress : IProgress<GenerationProgress>
{
    public List<GenerationProgress> Reports { get; } = new();
    public Action<GenerationProgress>? OnReport { get; set; }
    public void Report(GenerationProgress value)
    {
        lock (Reports) Reports.Add(value);
        OnReport?.Invoke(value);
    }
}
