using System.Diagnostics.Metrics;

namespace ZImage.Runtime.Hosting;

/// <summary>The device-memory figures the gauges observe.</summary>
/// <param name="DeviceBytes">Device capacity.</param>
/// <param name="SystemReserveBytes">System reserve segment.</param>
/// <param name="BaseBytes">Base (weights) segment.</param>
/// <param name="InferenceBytes">Inference segment.</param>
/// <param name="BufferBytes">Buffer segment.</param>
/// <param name="FreeBytes">Unassigned remainder.</param>
/// <param name="WorkspaceInUseBytes">Workspace allocated right now.</param>
/// <param name="ReservedBytes">Bytes the allocator holds from the device.</param>
public readonly record struct MemoryGaugeValues(long DeviceBytes, long SystemReserveBytes, long BaseBytes, long InferenceBytes,
    long BufferBytes, long FreeBytes, long WorkspaceInUseBytes, long ReservedBytes);

/// <summary>
/// The <c>ZImage</c> meter: observable gauges per memory segment (<c>zimage.memory.*</c>, By), counters of generations,
/// rejections, resets, allocator retries and OOMs, and a histogram of denoising-step durations (s). Created through
/// <see cref="IMeterFactory"/> so the meter is shared and disposed with the container.
/// </summary>
public sealed class ZImageMetrics
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "ZImage";

    private readonly Counter<long> _generations;
    private readonly Counter<long> _rejections;
    private readonly Counter<long> _resets;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _ooms;
    private readonly Counter<long> _drifts;
    private readonly Histogram<double> _stepDuration;
    private Func<MemoryGaugeValues?>? _memory;

    /// <summary>Creates the instruments on the meter <c>ZImage</c> from <paramref name="meterFactory"/>.</summary>
    public ZImageMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(new MeterOptions(MeterName) { Version = typeof(ZImageMetrics).Assembly.GetName().Version?.ToString() });
        _generations = Meter.CreateCounter<long>("zimage.generations", "{generation}", "Generations finished, by outcome (completed, failed, cancelled).");
        _rejections = Meter.CreateCounter<long>("zimage.requests.rejected", "{request}", "Requests refused before running, by reason (range, budget, busy).");
        _resets = Meter.CreateCounter<long>("zimage.requests.reset", "{request}", "Requests reset to the Standard preset by the out-of-range policy.");
        _retries = Meter.CreateCounter<long>("zimage.allocator.retries", "{retry}", "Device allocations retried after freeing the allocator cache.");
        _ooms = Meter.CreateCounter<long>("zimage.allocator.ooms", "{oom}", "Device out-of-memory failures inside generations.");
        _drifts = Meter.CreateCounter<long>("zimage.memory.drift", "{event}", "Generations after which allocated bytes did not return to the baseline.");
        _stepDuration = Meter.CreateHistogram<double>("zimage.step.duration", "s", "Duration of one denoising step (all DiT forwards of the step).");
        Gauge("zimage.memory.device", "Device capacity.", v => v.DeviceBytes);
        Gauge("zimage.memory.system_reserve", "System reserve segment.", v => v.SystemReserveBytes);
        Gauge("zimage.memory.base", "Base segment (resident weights).", v => v.BaseBytes);
        Gauge("zimage.memory.inference", "Inference segment (per-request workspace budget).", v => v.InferenceBytes);
        Gauge("zimage.memory.buffer", "Buffer segment.", v => v.BufferBytes);
        Gauge("zimage.memory.free", "Unassigned device memory.", v => v.FreeBytes);
        Gauge("zimage.memory.workspace_in_use", "Workspace allocated now.", v => v.WorkspaceInUseBytes);
        Gauge("zimage.memory.reserved", "Bytes the caching allocator holds from the device.", v => v.ReservedBytes);
    }

    /// <summary>The meter.</summary>
    public Meter Meter { get; }

    /// <summary>Sets where the memory gauges read their values (the pipeline does this when it starts).</summary>
    public void ObserveMemory(Func<MemoryGaugeValues?> source) => _memory = source;

    internal void GenerationFinished(string outcome) => _generations.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
    internal void Rejected(string reason) => _rejections.Add(1, new KeyValuePair<string, object?>("reason", reason));
    internal void Reset() => _resets.Add(1);
    internal void AllocatorRetries(long count) { if (count > 0) _retries.Add(count); }
    internal void OutOfMemory() => _ooms.Add(1);
    internal void Drift() => _drifts.Add(1);
    internal void StepDuration(TimeSpan duration) => _stepDuration.Record(duration.TotalSeconds);

    private void Gauge(string name, string description, Func<MemoryGaugeValues, long> pick) =>
        Meter.CreateObservableGauge(name, () => _memory?.Invoke() is { } v ? [new Measurement<long>(pick(v))] : Array.Empty<Measurement<long>>(), "By", description);
}
