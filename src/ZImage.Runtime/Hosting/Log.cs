using Microsoft.Extensions.Logging;

namespace ZImage.Runtime.Hosting;

/// <summary>Event ids of the ZImage pipeline logs (one place, so they stay unique and stable).</summary>
public static class ZImageEventIds
{
    /// <summary>Model loaded and kernels warmed up.</summary>
    public const int PipelineStarted = 1000;
    /// <summary>Memory carve-up computed.</summary>
    public const int CarveUp = 1001;
    /// <summary>A generation started on the device.</summary>
    public const int GenerationStarted = 1100;
    /// <summary>A generation finished.</summary>
    public const int GenerationCompleted = 1101;
    /// <summary>A generation was cancelled.</summary>
    public const int GenerationCancelled = 1102;
    /// <summary>A generation failed (only that request).</summary>
    public const int GenerationFailed = 1103;
    /// <summary>The device ran out of memory inside a generation.</summary>
    public const int DeviceOutOfMemory = 1104;
    /// <summary>A request was reset to the Standard preset.</summary>
    public const int RequestReset = 1200;
    /// <summary>A request was rejected (range, budget or busy).</summary>
    public const int RequestRejected = 1201;
    /// <summary>A request was downscaled to fit the budget.</summary>
    public const int RequestDownscaled = 1202;
    /// <summary>Workspace bytes did not return to the baseline after a generation.</summary>
    public const int MemoryDrift = 1300;
    /// <summary>Cached segments were returned to the device.</summary>
    public const int CacheTrimmed = 1301;
}

/// <summary>Source-generated log messages of the pipeline.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = ZImageEventIds.PipelineStarted, Level = LogLevel.Information,
        Message = "ZImage pipeline ready: model {Model} on {Device}; weights {WeightBytes} B; load + warm-up {ElapsedMs} ms")]
    public static partial void PipelineStarted(ILogger logger, string model, string device, long weightBytes, long elapsedMs);

    [LoggerMessage(EventId = ZImageEventIds.CarveUp, Level = LogLevel.Information,
        Message = "Memory carve-up of {DeviceBytes} B: system reserve {ReserveBytes} B, base {BaseBytes} B, inference {InferenceBytes} B, buffer {BufferBytes} B, free {FreeBytes} B")]
    public static partial void CarveUp(ILogger logger, long deviceBytes, long reserveBytes, long baseBytes, long inferenceBytes, long bufferBytes, long freeBytes);

    [LoggerMessage(EventId = ZImageEventIds.GenerationStarted, Level = LogLevel.Debug,
        Message = "Generation started: {Width}x{Height}, {Steps} steps, guidance {Guidance}, seed {Seed}, planned peak {PeakBytes} B, waited {QueueMs} ms")]
    public static partial void GenerationStarted(ILogger logger, int width, int height, int steps, float guidance, long seed, long peakBytes, long queueMs);

    [LoggerMessage(EventId = ZImageEventIds.GenerationCompleted, Level = LogLevel.Information,
        Message = "Generation completed: {Width}x{Height}, {Steps} steps, seed {Seed} in {ElapsedMs} ms; measured peak {PeakBytes} B")]
    public static partial void GenerationCompleted(ILogger logger, int width, int height, int steps, long seed, long elapsedMs, long peakBytes);

    [LoggerMessage(EventId = ZImageEventIds.GenerationCancelled, Level = LogLevel.Information, Message = "Generation cancelled during {Stage}")]
    public static partial void GenerationCancelled(ILogger logger, string stage);

    [LoggerMessage(EventId = ZImageEventIds.GenerationFailed, Level = LogLevel.Error, Message = "Generation failed during {Stage}; the next request runs normally")]
    public static partial void GenerationFailed(ILogger logger, Exception exception, string stage);

    [LoggerMessage(EventId = ZImageEventIds.DeviceOutOfMemory, Level = LogLevel.Error, Message = "Device out of memory during {Stage}: {Reason}")]
    public static partial void DeviceOutOfMemory(ILogger logger, string stage, string reason);

    [LoggerMessage(EventId = ZImageEventIds.RequestReset, Level = LogLevel.Warning, Message = "Request reset to Standard: {Reason}")]
    public static partial void RequestReset(ILogger logger, string reason);

    [LoggerMessage(EventId = ZImageEventIds.RequestRejected, Level = LogLevel.Warning, Message = "Request rejected ({Kind}): {Reason}")]
    public static partial void RequestRejected(ILogger logger, string kind, string reason);

    [LoggerMessage(EventId = ZImageEventIds.RequestDownscaled, Level = LogLevel.Warning, Message = "Request downscaled to fit the budget: {Reason}")]
    public static partial void RequestDownscaled(ILogger logger, string reason);

    [LoggerMessage(EventId = ZImageEventIds.MemoryDrift, Level = LogLevel.Error,
        Message = "Allocated device bytes did not return to the baseline after a generation: {AllocatedBytes} B now, baseline {BaselineBytes} B (drift {DriftBytes} B)")]
    public static partial void MemoryDrift(ILogger logger, long allocatedBytes, long baselineBytes, long driftBytes);

    [LoggerMessage(EventId = ZImageEventIds.CacheTrimmed, Level = LogLevel.Debug, Message = "Allocator cache trimmed: reserved {BeforeBytes} B -> {AfterBytes} B")]
    public static partial void CacheTrimmed(ILogger logger, long beforeBytes, long afterBytes);
}
