namespace ZImage.Runtime.Memory;

/// <summary>One statistic as in <c>torch.cuda.memory_stats</c>: current value, peak since the last reset, and totals increased/decreased.</summary>
/// <param name="Current">The value now.</param>
/// <param name="Peak">The highest value since creation or <c>ResetPeakStats</c>.</param>
/// <param name="Allocated">Sum of all increases (PyTorch's <c>allocated</c> sub-key).</param>
/// <param name="Freed">Sum of all decreases (PyTorch's <c>freed</c> sub-key).</param>
public readonly record struct StatValue(long Current, long Peak, long Allocated, long Freed);

/// <summary>The statistics of one pool selection (<c>all</c>, <c>small_pool</c> or <c>large_pool</c>).</summary>
/// <param name="Allocation">Number of live allocations.</param>
/// <param name="Segment">Number of segments (device allocations).</param>
/// <param name="Active">Number of active blocks (allocated or awaiting stream events; equals <paramref name="Allocation"/> here).</param>
/// <param name="InactiveSplit">Number of free blocks inside split segments (not releasable).</param>
/// <param name="AllocatedBytes">Bytes of blocks handed out (rounded size plus any unsplit remainder).</param>
/// <param name="ReservedBytes">Bytes of all segments.</param>
/// <param name="ActiveBytes">Bytes of active blocks.</param>
/// <param name="InactiveSplitBytes">Bytes of free blocks inside split segments: the fragmentation indicator.</param>
/// <param name="RequestedBytes">Bytes the callers asked for.</param>
/// <param name="RoundedBytes">Bytes after request rounding (ZImage extra: <paramref name="AllocatedBytes"/> minus this is unsplit-remainder waste).</param>
public sealed record PoolStatistics(
    StatValue Allocation,
    StatValue Segment,
    StatValue Active,
    StatValue InactiveSplit,
    StatValue AllocatedBytes,
    StatValue ReservedBytes,
    StatValue ActiveBytes,
    StatValue InactiveSplitBytes,
    StatValue RequestedBytes,
    StatValue RoundedBytes);

/// <summary>Per-tag statistics (every allocation carries a tag, see <see cref="AllocationTags"/>).</summary>
/// <param name="Tag">The tag.</param>
/// <param name="Allocation">Live allocations with this tag (Allocated/Freed = totals).</param>
/// <param name="AllocatedBytes">Allocated block bytes with this tag.</param>
/// <param name="RequestedBytes">Requested bytes with this tag.</param>
public sealed record TagStatistics(string Tag, StatValue Allocation, StatValue AllocatedBytes, StatValue RequestedBytes);

/// <summary>An immutable snapshot of an allocator's statistics, with the meanings of <c>torch.cuda.memory_stats</c>.</summary>
public sealed record AllocatorStatistics
{
    /// <summary>Both pools together (<c>*.all.*</c>).</summary>
    public required PoolStatistics All { get; init; }
    /// <summary>The small pool (blocks of at most 1 MiB).</summary>
    public required PoolStatistics SmallPool { get; init; }
    /// <summary>The large pool.</summary>
    public required PoolStatistics LargePool { get; init; }
    /// <summary>Live allocations of blocks &gt;= max_split_size (<c>oversize_allocations</c>).</summary>
    public required StatValue OversizeAllocations { get; init; }
    /// <summary>Segments &gt;= max_split_size (<c>oversize_segments</c>).</summary>
    public required StatValue OversizeSegments { get; init; }
    /// <summary>Device allocations attempted after releasing all cached blocks (<c>num_alloc_retries</c>).</summary>
    public required long NumAllocRetries { get; init; }
    /// <summary>Requests that failed after the whole retry chain (<c>num_ooms</c>).</summary>
    public required long NumOoms { get; init; }
    /// <summary>Successful device allocations (<c>num_device_alloc</c>).</summary>
    public required long NumDeviceAlloc { get; init; }
    /// <summary>Device frees (<c>num_device_free</c>).</summary>
    public required long NumDeviceFree { get; init; }
    /// <summary>Statistics per tag, by tag.</summary>
    public required IReadOnlyDictionary<string, TagStatistics> Tags { get; init; }

    /// <summary><c>allocated_bytes.all</c>.</summary>
    public StatValue AllocatedBytes => All.AllocatedBytes;
    /// <summary><c>reserved_bytes.all</c>.</summary>
    public StatValue ReservedBytes => All.ReservedBytes;
    /// <summary><c>active_bytes.all</c>.</summary>
    public StatValue ActiveBytes => All.ActiveBytes;
    /// <summary><c>inactive_split_bytes.all</c>.</summary>
    public StatValue InactiveSplitBytes => All.InactiveSplitBytes;
    /// <summary><c>requested_bytes.all</c>.</summary>
    public StatValue RequestedBytes => All.RequestedBytes;
    /// <summary><c>allocation.all</c>.</summary>
    public StatValue Allocation => All.Allocation;
    /// <summary><c>segment.all</c>.</summary>
    public StatValue Segment => All.Segment;

    /// <summary>Flattens into PyTorch's key names, e.g. <c>allocated_bytes.all.current</c>, <c>num_ooms</c>.</summary>
    public IReadOnlyDictionary<string, long> ToTorchDictionary()
    {
        var d = new SortedDictionary<string, long>(StringComparer.Ordinal);
        void AddStat(string name, StatValue v)
        {
            d[name + ".current"] = v.Current;
            d[name + ".peak"] = v.Peak;
            d[name + ".allocated"] = v.Allocated;
            d[name + ".freed"] = v.Freed;
        }
        foreach (var (pool, s) in new[] { ("all", All), ("small_pool", SmallPool), ("large_pool", LargePool) })
        {
            AddStat("allocation." + pool, s.Allocation);
            AddStat("segment." + pool, s.Segment);
            AddStat("active." + pool, s.Active);
            AddStat("inactive_split." + pool, s.InactiveSplit);
            AddStat("allocated_bytes." + pool, s.AllocatedBytes);
            AddStat("reserved_bytes." + pool, s.ReservedBytes);
            AddStat("active_bytes." + pool, s.ActiveBytes);
            AddStat("inactive_split_bytes." + pool, s.InactiveSplitBytes);
            AddStat("requested_bytes." + pool, s.RequestedBytes);
        }
        AddStat("oversize_allocations", OversizeAllocations);
        AddStat("oversize_segments", OversizeSegments);
        d["num_alloc_retries"] = NumAllocRetries;
        d["num_ooms"] = NumOoms;
        d["num_device_alloc"] = NumDeviceAlloc;
        d["num_device_free"] = NumDeviceFree;
        return d;
    }
}
