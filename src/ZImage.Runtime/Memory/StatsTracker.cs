using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ZImage.Runtime.Memory;

/// <summary>A mutable statistic (PyTorch's <c>Stat</c>).</summary>
internal struct Stat
{
    public long Current;
    public long Peak;
    public long Allocated;
    public long Freed;

    // Branch-free: Current <= Peak holds between updates, so Max is exact.
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

    public void ResetPeak() => Peak = Current;

    public void ResetAccumulated()
    {
        Allocated = 0;
        Freed = 0;
    }

    public readonly StatValue Snapshot() => new(Current, Peak, Allocated, Freed);
}

/// <summary>
/// Four statistics updated together, one per lane: the allocator changes a block's count and its bytes in the same
/// step, so one vector add (and one max for the peaks) replaces four scalar read-modify-writes and their peak branches.
/// Lanes that an update leaves at 0 are unchanged, peaks included, because Current never exceeds Peak between updates.
/// </summary>
internal struct StatQuad
{
    public Vector256<long> Current, Peak, Allocated, Freed;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Increase(Vector256<long> n)
    {
        var c = Current + n;
        Current = c;
        Allocated += n;
        Peak = Vector256.Max(Peak, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Decrease(Vector256<long> n)
    {
        Current -= n;
        Freed += n;
    }

    /// <summary>Per lane: an increase by a positive delta, a decrease by a negative one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Change(Vector256<long> delta)
    {
        var up = Vector256.Max(delta, Vector256<long>.Zero);
        var c = Current + delta;
        Current = c;
        Allocated += up;
        Freed += up - delta;
        Peak = Vector256.Max(Peak, c);
    }

    public void ResetPeak() => Peak = Current;

    public void ResetAccumulated()
    {
        Allocated = Vector256<long>.Zero;
        Freed = Vector256<long>.Zero;
    }

    public readonly StatValue Snapshot(int lane) => new(Current[lane], Peak[lane], Allocated[lane], Freed[lane]);
}

/// <summary>
/// The statistics of one pool selection; the allocator updates <c>all</c> and the block's pool. PyTorch's <c>active</c> and
/// <c>active_bytes</c> differ from <c>allocation</c> and <c>allocated_bytes</c> only for blocks whose free waits on
/// cross-stream events, which these allocators never defer, so they are reported from the same counters instead of
/// being updated twice on every allocation and free.
/// </summary>
internal struct PoolStats
{
    /// <summary>Lanes: allocation (count), allocated_bytes, requested_bytes, rounded bytes.</summary>
    public StatQuad Blocks;
    /// <summary>Lanes: segment (count), reserved_bytes, inactive_split (count), inactive_split_bytes.</summary>
    public StatQuad Segments;

    public void ResetPeak()
    {
        Blocks.ResetPeak();
        Segments.ResetPeak();
    }

    public void ResetAccumulated()
    {
        Blocks.ResetAccumulated();
        Segments.ResetAccumulated();
    }

    public readonly PoolStatistics Snapshot()
    {
        StatValue allocation = Blocks.Snapshot(0), allocatedBytes = Blocks.Snapshot(1);
        return new(allocation, Segments.Snapshot(0), allocation, Segments.Snapshot(2), allocatedBytes,
            Segments.Snapshot(1), allocatedBytes, Segments.Snapshot(3), Blocks.Snapshot(2), Blocks.Snapshot(3));
    }
}

/// <summary>Per-tag counters; lanes: allocation (count), allocated bytes, requested bytes, unused.</summary>
internal struct TagStats
{
    public StatQuad Blocks;
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
        var d = Vector256.Create(1, size, 0, 0);
        All.Segments.Increase(d);
        Pool(small).Segments.Increase(d);
        if (oversize)
            OversizeSegments.Increase(1);
    }

    public void SegmentFreed(bool small, long size, bool oversize)
    {
        NumDeviceFree++;
        var d = Vector256.Create(1, size, 0, 0);
        All.Segments.Decrease(d);
        Pool(small).Segments.Decrease(d);
        if (oversize)
            OversizeSegments.Decrease(1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void BlockAllocated(bool small, long size, long requested, long rounded, int tag, bool oversize)
    {
        var d = Vector256.Create(1, size, requested, rounded);
        All.Blocks.Increase(d);
        Pool(small).Blocks.Increase(d);
        if (oversize)
            OversizeAllocations.Increase(1);
        _tags[tag].Blocks.Increase(Vector256.Create(1, size, requested, 0));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void BlockFreed(bool small, long size, long requested, long rounded, int tag, bool oversize)
    {
        var d = Vector256.Create(1, size, requested, rounded);
        All.Blocks.Decrease(d);
        Pool(small).Blocks.Decrease(d);
        if (oversize)
            OversizeAllocations.Decrease(1);
        _tags[tag].Blocks.Decrease(Vector256.Create(1, size, requested, 0));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void InactiveSplitChanged(bool small, long countDelta, long bytesDelta)
    {
        var d = Vector256.Create(0, 0, countDelta, bytesDelta);
        All.Segments.Change(d);
        Pool(small).Segments.Change(d);
    }

    public void ResetPeak()
    {
        All.ResetPeak();
        Small.ResetPeak();
        Large.ResetPeak();
        OversizeAllocations.ResetPeak();
        OversizeSegments.ResetPeak();
        for (int i = 0; i < _tagCount; i++)
            _tags[i].Blocks.ResetPeak();
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
            _tags[i].Blocks.ResetAccumulated();
    }

    public AllocatorStatistics Snapshot()
    {
        var tags = new Dictionary<string, TagStatistics>(_tagCount, StringComparer.Ordinal);
        for (int i = 0; i < _tagCount; i++)
            tags[_tagNames[i]] = new TagStatistics(_tagNames[i], _tags[i].Blocks.Snapshot(0), _tags[i].Blocks.Snapshot(1), _tags[i].Blocks.Snapshot(2));
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
