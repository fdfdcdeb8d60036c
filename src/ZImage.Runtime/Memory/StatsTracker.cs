using System.Runtime.CompilerServices;

namespace ZImage.Runtime.Memory;

/// <summary>A mutable statistic (PyTorch's <c>Stat</c>).</summary>
internal struct Stat
{
    public long Current;
    public long Peak;
    public long Allocated;
    public long Freed;

    // Branch-free: the allocator updates a dozen of these per allocation, and Current <= Peak always holds between
    // updates, so Max leaves Peak alone on a decrease.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Increase(long n)
    {
        long c = Current + n;
        Current = c;
        Allocated += n;
        Peak = Math.Max(Peak, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Decrease(long n)
    {
        Current -= n;
        Freed += n;
    }

    /// <summary>Increase by a positive <paramref name="delta"/>, decrease by a negative one, nothing for 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Change(long delta)
    {
        long up = Math.Max(delta, 0);
        long c = Current + delta;
        Current = c;
        Allocated += up;
        Freed += up - delta;
        Peak = Math.Max(Peak, c);
    }

    public void ResetPeak() => Peak = Current;

    public void ResetAccumulated()
    {
        Allocated = 0;
        Freed = 0;
    }

    public readonly StatValue Snapshot() => new(Current, Peak, Allocated, Freed);
}

/// <summary>
/// The statistics of one pool selection; the allocator updates <c>all</c> and the block's pool. PyTorch's <c>active</c> and
/// <c>active_bytes</c> differ from <c>allocation</c> and <c>allocated_bytes</c> only for blocks whose free waits on
/// cross-stream events, which these allocators never defer, so they are reported from the same counters instead of
/// being updated twice on every allocation and free.
/// </summary>
internal struct PoolStats
{
    public Stat Allocation, Segment, InactiveSplit, AllocatedBytes, ReservedBytes, InactiveSplitBytes, RequestedBytes, RoundedBytes;

    public void ResetPeak()
    {
        Allocation.ResetPeak(); Segment.ResetPeak(); InactiveSplit.ResetPeak(); AllocatedBytes.ResetPeak();
        ReservedBytes.ResetPeak(); InactiveSplitBytes.ResetPeak(); RequestedBytes.ResetPeak(); RoundedBytes.ResetPeak();
    }

    public void ResetAccumulated()
    {
        Allocation.ResetAccumulated(); Segment.ResetAccumulated(); InactiveSplit.ResetAccumulated();
        AllocatedBytes.ResetAccumulated(); ReservedBytes.ResetAccumulated();
        InactiveSplitBytes.ResetAccumulated(); RequestedBytes.ResetAccumulated(); RoundedBytes.ResetAccumulated();
    }

    public readonly PoolStatistics Snapshot() => new(
        Allocation.Snapshot(), Segment.Snapshot(), Allocation.Snapshot(), InactiveSplit.Snapshot(), AllocatedBytes.Snapshot(),
        ReservedBytes.Snapshot(), AllocatedBytes.Snapshot(), InactiveSplitBytes.Snapshot(), RequestedBytes.Snapshot(), RoundedBytes.Snapshot());
}

/// <summary>Per-tag counters.</summary>
internal struct TagStats
{
    public Stat Allocation, AllocatedBytes, RequestedBytes;
}

/// <summary>
/// All counters of an allocator, with PyTorch's update points. Not thread-safe: the owner holds its lock. Tag lookup
/// allocates only the first time a tag is seen (reference-equal tags skip the dictionary).
/// </summary>
internal sealed class StatsTracker
{
    public PoolStats All, Small, Large;
    public Stat OversizeAllocations, OversizeSegments;
    public long NumAllocRetries, NumOoms, NumDeviceAlloc, NumDeviceFree;

    private readonly Dictionary<string, int> _tagIndex = new(StringComparer.Ordinal);
    private string[] _tagNames = new string[8];
    private TagStats[] _tags = new TagStats[8];
    private int _tagCount;
    private string? _lastTag;
    private int _lastTagIndex;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref PoolStats Pool(bool small) => ref small ? ref Small : ref Large;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int TagIndex(string tag) => ReferenceEquals(tag, _lastTag) ? _lastTagIndex : LookUpTag(tag);

    private int LookUpTag(string tag)
    {
        if (!_tagIndex.TryGetValue(tag, out int index))
            index = AddTag(tag);
        _lastTag = tag;
        _lastTagIndex = index;
        return index;
    }

    public string TagName(int index) => _tagNames[index];

    public void SegmentAllocated(bool small, long size, bool oversize)
    {
        NumDeviceAlloc++;
        All.Segment.Increase(1);
        All.ReservedBytes.Increase(size);
        ref var p = ref Pool(small);
        p.Segment.Increase(1);
        p.ReservedBytes.Increase(size);
        if (oversize)
            OversizeSegments.Increase(1);
    }

    public void SegmentFreed(bool small, long size, bool oversize)
    {
        NumDeviceFree++;
        All.Segment.Decrease(1);
        All.ReservedBytes.Decrease(size);
        ref var p = ref Pool(small);
        p.Segment.Decrease(1);
        p.ReservedBytes.Decrease(size);
        if (oversize)
            OversizeSegments.Decrease(1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void BlockAllocated(bool small, long size, long requested, long rounded, int tag, bool oversize)
    {
        Add(ref All, size, requested, rounded);
        Add(ref Pool(small), size, requested, rounded);
        if (oversize)
            OversizeAllocations.Increase(1);
        ref var t = ref _tags[tag];
        t.Allocation.Increase(1);
        t.AllocatedBytes.Increase(size);
        t.RequestedBytes.Increase(requested);

        static void Add(ref PoolStats p, long size, long requested, long rounded)
        {
            p.Allocation.Increase(1);
            p.AllocatedBytes.Increase(size);
            p.RequestedBytes.Increase(requested);
            p.RoundedBytes.Increase(rounded);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void BlockFreed(bool small, long size, long requested, long rounded, int tag, bool oversize)
    {
        Sub(ref All, size, requested, rounded);
        Sub(ref Pool(small), size, requested, rounded);
        if (oversize)
            OversizeAllocations.Decrease(1);
        ref var t = ref _tags[tag];
        t.Allocation.Decrease(1);
        t.AllocatedBytes.Decrease(size);
        t.RequestedBytes.Decrease(requested);

        static void Sub(ref PoolStats p, long size, long requested, long rounded)
        {
            p.Allocation.Decrease(1);
            p.AllocatedBytes.Decrease(size);
            p.RequestedBytes.Decrease(requested);
            p.RoundedBytes.Decrease(rounded);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void InactiveSplitChanged(bool small, long countDelta, long bytesDelta)
    {
        All.InactiveSplit.Change(countDelta);
        All.InactiveSplitBytes.Change(bytesDelta);
        ref var p = ref Pool(small);
        p.InactiveSplit.Change(countDelta);
        p.InactiveSplitBytes.Change(bytesDelta);
    }

    public void ResetPeak()
    {
        All.ResetPeak();
        Small.ResetPeak();
        Large.ResetPeak();
        OversizeAllocations.ResetPeak();
        OversizeSegments.ResetPeak();
        for (int i = 0; i < _tagCount; i++)
        {
            _tags[i].Allocation.ResetPeak();
            _tags[i].AllocatedBytes.ResetPeak();
            _tags[i].RequestedBytes.ResetPeak();
        }
    }

    public void ResetAccumulated()
    {
        All.ResetAccumulated();
        Small.ResetAccumulated();
        Large.ResetAccumulated();
        OversizeAllocations.ResetAccumulated();
        OversizeSegments.ResetAccumulated();
        NumAllocRetries = NumOoms = NumDeviceAlloc = NumDeviceFree = 0;
        for (int i = 0; i < _tagCount; i++)
        {
            _tags[i].Allocation.ResetAccumulated();
            _tags[i].AllocatedBytes.ResetAccumulated();
            _tags[i].RequestedBytes.ResetAccumulated();
        }
    }

    public AllocatorStatistics Snapshot()
    {
        var tags = new Dictionary<string, TagStatistics>(_tagCount, StringComparer.Ordinal);
        for (int i = 0; i < _tagCount; i++)
            tags[_tagNames[i]] = new TagStatistics(_tagNames[i], _tags[i].Allocation.Snapshot(), _tags[i].AllocatedBytes.Snapshot(), _tags[i].RequestedBytes.Snapshot());
        return new AllocatorStatistics
        {
            All = All.Snapshot(),
            SmallPool = Small.Snapshot(),
            LargePool = Large.Snapshot(),
            OversizeAllocations = OversizeAllocations.Snapshot(),
            OversizeSegments = OversizeSegments.Snapshot(),
            NumAllocRetries = NumAllocRetries,
            NumOoms = NumOoms,
            NumDeviceAlloc = NumDeviceAlloc,
            NumDeviceFree = NumDeviceFree,
            Tags = tags.AsReadOnly(),
        };
    }

    private int AddTag(string tag)
    {
        if (_tagCount == _tags.Length)
        {
            Array.Resize(ref _tags, _tagCount * 2);
            Array.Resize(ref _tagNames, _tagCount * 2);
        }
        int index = _tagCount++;
        _tagNames[index] = tag;
        _tagIndex[tag] = index;
        return index;
    }
}
