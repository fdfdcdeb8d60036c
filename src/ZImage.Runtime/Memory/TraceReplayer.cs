using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ZImage.Runtime.Memory;

/// <summary>An allocation that failed during replay.</summary>
/// <param name="EventIndex">0-based index among the events after the header.</param>
/// <param name="Id">The trace id of the failed allocation.</param>
/// <param name="Size">Its requested size.</param>
public sealed record ReplayOomEvent(
    [property: JsonPropertyName("event_index")] int EventIndex,
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("size")] long Size);

/// <summary>What a replay produced; JSON field names are the snake_case ones of <c>zimage replay --json</c>.</summary>
public sealed record ReplayResult
{
    /// <summary>The policy replayed (e.g. <c>caching(max_split_size_mb:128)</c>).</summary>
    [JsonPropertyName("policy")] public required string Policy { get; init; }
    /// <summary>The simulated device capacity, or null when unlimited.</summary>
    [JsonPropertyName("device_bytes")] public long? DeviceBytes { get; init; }
    /// <summary>Number of events replayed.</summary>
    [JsonPropertyName("events")] public required int Events { get; init; }
    /// <summary>Peak allocated bytes (blocks handed out, PyTorch counting).</summary>
    [JsonPropertyName("peak_allocated_bytes")] public required long PeakAllocatedBytes { get; init; }
    /// <summary>Allocated bytes after the last event.</summary>
    [JsonPropertyName("final_allocated_bytes")] public required long FinalAllocatedBytes { get; init; }
    /// <summary>Peak reserved bytes (segments).</summary>
    [JsonPropertyName("peak_reserved_bytes")] public required long PeakReservedBytes { get; init; }
    /// <summary>Reserved bytes after the last event (no empty_cache at the end).</summary>
    [JsonPropertyName("final_reserved_bytes")] public required long FinalReservedBytes { get; init; }
    /// <summary>Peak requested bytes.</summary>
    [JsonPropertyName("peak_requested_bytes")] public required long PeakRequestedBytes { get; init; }
    /// <summary>Peak of the rounded request sizes.</summary>
    [JsonPropertyName("peak_rounded_bytes")] public required long PeakRoundedBytes { get; init; }
    /// <summary>Successful device allocations.</summary>
    [JsonPropertyName("num_device_alloc")] public required long NumDeviceAlloc { get; init; }
    /// <summary>Device frees.</summary>
    [JsonPropertyName("num_device_free")] public required long NumDeviceFree { get; init; }
    /// <summary>Device allocations retried after releasing all cached blocks.</summary>
    [JsonPropertyName("num_alloc_retries")] public required long NumAllocRetries { get; init; }
    /// <summary>Allocations that ended in out-of-memory.</summary>
    [JsonPropertyName("num_ooms")] public required long NumOoms { get; init; }
    /// <summary>Index of the first failed allocation among the events, or null.</summary>
    [JsonPropertyName("first_oom_event_index")] public int? FirstOomEventIndex { get; init; }
    /// <summary>Peak number of segments.</summary>
    [JsonPropertyName("peak_segments")] public required long PeakSegments { get; init; }
    /// <summary>Segments after the last event.</summary>
    [JsonPropertyName("final_segments")] public required long FinalSegments { get; init; }
    /// <summary>Every failed allocation.</summary>
    [JsonPropertyName("oom_events")] public required IReadOnlyList<ReplayOomEvent> OomEvents { get; init; }
    /// <summary>The full statistics at the end (not part of the JSON).</summary>
    public required AllocatorStatistics Statistics { get; init; }

    /// <summary>One JSON object with the snake_case fields (written by hand: no reflection, stable field order).</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("policy", Policy);
            if (DeviceBytes is { } d) w.WriteNumber("device_bytes", d); else w.WriteNull("device_bytes");
            w.WriteNumber("events", Events);
            w.WriteNumber("peak_allocated_bytes", PeakAllocatedBytes);
            w.WriteNumber("final_allocated_bytes", FinalAllocatedBytes);
            w.WriteNumber("peak_reserved_bytes", PeakReservedBytes);
            w.WriteNumber("final_reserved_bytes", FinalReservedBytes);
            w.WriteNumber("peak_requested_bytes", PeakRequestedBytes);
            w.WriteNumber("peak_rounded_bytes", PeakRoundedBytes);
            w.WriteNumber("num_device_alloc", NumDeviceAlloc);
            w.WriteNumber("num_device_free", NumDeviceFree);
            w.WriteNumber("num_alloc_retries", NumAllocRetries);
            w.WriteNumber("num_ooms", NumOoms);
            if (FirstOomEventIndex is { } f) w.WriteNumber("first_oom_event_index", f); else w.WriteNull("first_oom_event_index");
            w.WriteNumber("peak_segments", PeakSegments);
            w.WriteNumber("final_segments", FinalSegments);
            w.WriteStartArray("oom_events");
            foreach (var e in OomEvents)
            {
                w.WriteStartObject();
                w.WriteNumber("event_index", e.EventIndex);
                w.WriteNumber("id", e.Id);
                w.WriteNumber("size", e.Size);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Field name / value rows for a readable table.</summary>
    public IReadOnlyList<(string Name, string Value)> ToRows()
    {
        static string B(long v) => $"{v.ToString("N0", CultureInfo.InvariantCulture)} ({ByteSize.Format(v)})";
        return
        [
            ("policy", Policy),
            ("device_bytes", DeviceBytes is { } d ? B(d) : "unlimited"),
            ("events", Events.ToString(CultureInfo.InvariantCulture)),
            ("peak_allocated_bytes", B(PeakAllocatedBytes)),
            ("final_allocated_bytes", B(FinalAllocatedBytes)),
            ("peak_reserved_bytes", B(PeakReservedBytes)),
            ("final_reserved_bytes", B(FinalReservedBytes)),
            ("peak_requested_bytes", B(PeakRequestedBytes)),
            ("peak_rounded_bytes", B(PeakRoundedBytes)),
            ("num_device_alloc", NumDeviceAlloc.ToString(CultureInfo.InvariantCulture)),
            ("num_device_free", NumDeviceFree.ToString(CultureInfo.InvariantCulture)),
            ("num_alloc_retries", NumAllocRetries.ToString(CultureInfo.InvariantCulture)),
            ("num_ooms", NumOoms.ToString(CultureInfo.InvariantCulture)),
            ("first_oom_event_index", FirstOomEventIndex?.ToString(CultureInfo.InvariantCulture) ?? "none"),
            ("peak_segments", PeakSegments.ToString(CultureInfo.InvariantCulture)),
            ("final_segments", FinalSegments.ToString(CultureInfo.InvariantCulture)),
        ];
    }
}

/// <summary>
/// Runs a trace through an allocation policy on a simulated device. An alloc that ends in out-of-memory is counted (the
/// cache it released stays released), its later free is skipped, and replay continues.
/// </summary>
public static class TraceReplayer
{
    /// <summary>Replays through a <see cref="CachingAllocator"/> with <paramref name="settings"/>.</summary>
    /// <param name="trace">The trace.</param>
    /// <param name="settings">Allocator settings (null = defaults).</param>
    /// <param name="deviceBytes">Device capacity; default the trace header's, else unlimited.</param>
    public static ReplayResult Replay(AllocationTrace trace, AllocatorSettings? settings = null, long? deviceBytes = null) =>
        Replay(trace, backend => new CachingAllocator(backend, settings), deviceBytes);

    /// <summary>Replays through the policy made by <paramref name="policy"/> on a fresh simulated device.</summary>
    public static ReplayResult Replay(AllocationTrace trace, Func<IDeviceMemoryBackend, IBlockAllocator> policy, long? deviceBytes = null)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(policy);
        long? capacity = deviceBytes ?? trace.DeviceBytes;
        if (capacity is <= 0)
            throw new ArgumentOutOfRangeException(nameof(deviceBytes), capacity, "Device bytes must be > 0.");
        using var backend = new SimulatedDeviceBackend(capacity ?? SimulatedDeviceBackend.Unlimited);
        using var allocator = policy(backend);
        return Replay(trace, allocator, capacity);
    }

    /// <summary>Replays through an existing allocator (statistics include its earlier history).</summary>
    public static ReplayResult Replay(AllocationTrace trace, IBlockAllocator allocator, long? deviceBytes = null)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(allocator);
        var live = new Dictionary<long, BlockHandle>();
        var failed = new HashSet<long>();
        var ooms = new List<ReplayOomEvent>();
        var events = trace.Events;
        for (int i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (e.Op == AllocationTraceOp.Alloc)
            {
                if (live.ContainsKey(e.Id))
                    throw new TraceFormatException("<trace>", i + 2, $"event {i}: alloc of id {e.Id}, which is still live");
                failed.Remove(e.Id);
                if ((ulong)e.Size > CachingAllocator.MaxAllocationBytes)
                    throw new TraceFormatException("<trace>", i + 2, $"event {i}: alloc size must be >= 0 and <= {CachingAllocator.MaxAllocationBytes} (4 EiB), found {e.Size}");
                if (allocator.TryAllocateBlock(e.Size, e.Tag ?? "trace", out var handle, e.Stream))
                {
                    live.Add(e.Id, handle);
                }
                else
                {
                    ooms.Add(new ReplayOomEvent(i, e.Id, e.Size));
                    failed.Add(e.Id);
                }
            }
            else if (live.Remove(e.Id, out var handle))
            {
                allocator.FreeBlock(handle);
            }
            else if (!failed.Remove(e.Id))
            {
                throw new TraceFormatException("<trace>", i + 2, $"event {i}: free of id {e.Id}, which is not live");
            }
        }
        var s = allocator.GetStatistics();
        return new ReplayResult
        {
            Policy = allocator.Name,
            DeviceBytes = deviceBytes,
            Events = events.Count,
            PeakAllocatedBytes = s.AllocatedBytes.Peak,
            FinalAllocatedBytes = s.AllocatedBytes.Current,
            PeakReservedBytes = s.ReservedBytes.Peak,
            FinalReservedBytes = s.ReservedBytes.Current,
            PeakRequestedBytes = s.RequestedBytes.Peak,
            PeakRoundedBytes = s.All.RoundedBytes.Peak,
            NumDeviceAlloc = s.NumDeviceAlloc,
            NumDeviceFree = s.NumDeviceFree,
            NumAllocRetries = s.NumAllocRetries,
            NumOoms = s.NumOoms,
            FirstOomEventIndex = ooms.Count > 0 ? ooms[0].EventIndex : null,
            PeakSegments = s.Segment.Peak,
            FinalSegments = s.Segment.Current,
            OomEvents = ooms,
            Statistics = s,
        };
    }
}
