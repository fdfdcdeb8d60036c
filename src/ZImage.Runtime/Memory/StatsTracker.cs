using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
/// Freed is not stored: it is Allocated - (Current - Base), where Base is Current at the last reset of the accumulated
/// counts, so a decrease is a single subtraction.
/// </summary>
internal struct StatQuad
{
    public Vector256<long> Current, Peak, Allocated, Base;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Increase(Vector256<long> n)
    {
        var c = Current + n;
        Current = c;
        Allocated += n;
        // In steady state the peak rarely moves: a predictable branch instead of a store on every increase.
        if (Vector256.GreaterThanAny(c, Peak))
            Peak = Vector256.Max(Peak, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Decrease(Vector256<long> n) => Current -= n;

    /// <summary>Per lane: an increase by a positive delta, a decrease by a negative one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Change(Vector256<long> delta)
    {
        var c = Current + delta;
        Current = c;
        Allocated += Vector256.Max(delta, Vector256<long>.Zero);
        if (Vector256.GreaterThanAny(c, Peak))
            Peak = Vector256.Max(Peak, c);
    }

    public readonly Vector256<long> Freed => Allocated - (Current - Base);

    public void ResetPeak() => Peak = Current;

    public void ResetAccumulated()
    {
        Allocated = Vector256<long>.Zero;
        Base = Current;
    }

    public readonly StatValue Snapshot(int lane) => new(Current[lane], Peak[lane], Allocated[lane], Freed[lane]);
}

/// <summary>
/// The statistics of one pool selection (all, small or large) as two quads: <c>Blocks</c> lanes are allocation (count),
/// allocated_bytes, requested_bytes and rounded bytes; <c>Segments</c> lanes are segment (count), reserved_bytes,
/// inactive_split (count) and inactive_split_bytes. PyTorch's <c>active</c> and <c>active_bytes</c> differ from
/// <c>allocation</c> and <c>allocated_bytes</c> only for blocks whose free waits on cross-stream events, which these
/// allocators never defer, so they are reported from the same counters instead of being updated twice per operation.
/// </summary>
internal static class PoolStats
{
    public static PoolStatistics Snapshot(in StatQuad blocks, in StatQuad segments)
    {
        StatValue allocation = blocks.Snapshot(0), allocatedBytes = blocks.Snapshot(1);
        return new(allocation, segments.Snapshot(0), allocation, segments.Snapshot(2), allocatedBytes,
            segments.Snapshot(1), allocatedBytes, segments.Snapshot(3), blocks.Snapshot(2), blocks.Snapshot(3));
    }
}

/// <summary>
/// All counters of an allocator, with PyTorch's update points. Not thread-safe: the owner holds its lock. Tag lookup
/// allocates only the first time a tag is seen (reference-equal tags skip the dictionary).
/// </summary>
/// <remarks>
/// The quads live in one pinned array, aligned to a cache line: every operation reads and writes the same few
/// 32-byte vectors, and a vector that straddles a cache line (which an ordinary object field may) costs a split load and
/// defeats store-to-load forwarding between consecutive operations.
/// </remarks>
internal sealed unsafe class StatsTracker
{
    // Quads 0 and 1 hold only the peaks of "all" (blocks, segments): its other values are the sums of the two pools',
    // so each operation updates its pool and one peak instead of two full sets. Then small blocks/segments (2, 3),
    // large blocks/segments (4, 5), then one quad per tag.
    private const int AllBlocks = 0, AllSegments = 1, FirstPoolQuad = 2, TagQuads = 6;
    private const int LongsPerQuad = 16; // Current, Peak, Allocated, Freed x 4 lanes
    private const int CacheLine = 64;

    public Stat OversizeAllocations, OversizeSegments;
    public long NumAllocRetries, NumOoms, NumDeviceAlloc, NumDeviceFree;

    private readonly Dictionary<string, int> _tagIndex = new(StringComparer.Ordinal);
    private string[] _tagNames = new string[8];
    private int _tagCount;
    private string? _lastTag;
    private int _lastTagIndex;
    private long[] _quads = [];     // pinned; keeps _quadPtr's memory alive
    private int _quadBase;          // index of the first aligned long in _quads
    private StatQuad* _quadPtr;     // &_quads[_quadBase]

    public StatsTracker() => GrowQuads(TagQuads + 8);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref StatQuad Quad(int i) => ref _quadPtr[i];

    // Small pool: quads 2 (blocks) and 3 (segments); large pool: 4 and 5.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int PoolQuad(bool small) => small ? FirstPoolQuad : FirstPoolQuad + 2;

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
        Quad(PoolQuad(small) + 1).Increase(Vector256.Create(1, size, 0, 0));
        UpdateAllPeak(AllSegments);
        if (oversize)
            OversizeSegments.Increase(1);
    }

    public void SegmentFreed(bool small, long size, bool oversize)
    {
        NumDeviceFree++;
        Quad(PoolQuad(small) + 1).Decrease(Vector256.Create(1, size, 0, 0));
        if (oversize)
            OversizeSegments.Decrease(1);
    }

    /// <summary>A block was handed out; <paramref name="splitCount"/>/<paramref name="splitBytes"/> is the inactive-split change it caused.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void BlockAllocated(bool small, long size, long requested, long rounded, int tag, bool oversize, long splitCount = 0, long splitBytes = 0)
    {
        var d = Vector256.Create(1, size, requested, rounded);
        int pool = PoolQuad(small);
        Quad(pool).Increase(d);
        UpdateAllPeak(AllBlocks);
        if (oversize)
            OversizeAllocations.Increase(1);
        Quad(TagQuads + tag).Increase(d);
        if ((splitCount | splitBytes) != 0)
            InactiveSplitChanged(pool + 1, splitCount, splitBytes);
    }

    /// <summary>A block was freed; <paramref name="splitCount"/>/<paramref name="splitBytes"/> is the inactive-split change its merge caused.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void BlockFreed(bool small, long size, long requested, long rounded, int tag, bool oversize, long splitCount = 0, long splitBytes = 0)
    {
        var d = Vector256.Create(1, size, requested, rounded);
        int pool = PoolQuad(small);
        Quad(pool).Decrease(d);
        if (oversize)
            OversizeAllocations.Decrease(1);
        Quad(TagQuads + tag).Decrease(d); // the fourth lane is kept but not reported for tags
        if ((splitCount | splitBytes) != 0)
            InactiveSplitChanged(pool + 1, splitCount, splitBytes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void InactiveSplitChanged(int segmentsQuad, long countDelta, long bytesDelta)
    {
        Quad(segmentsQuad).Change(Vector256.Create(0, 0, countDelta, bytesDelta));
        UpdateAllPeak(AllSegments);
    }

    /// <summary>Raises the peak of "all" for quad <paramref name="all"/> (blocks or segments) to the two pools' sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void UpdateAllPeak(int all)
    {
        ref StatQuad a = ref Quad(all);
        var sum = Quad(FirstPoolQuad + all).Current + Quad(FirstPoolQuad + 2 + all).Current;
        if (Vector256.GreaterThanAny(sum, a.Peak))
            a.Peak = Vector256.Max(a.Peak, sum);
    }

    /// <summary>The quad of "all" for blocks or segments: the pools' sums, with its own peak.</summary>
    private StatQuad AllQuad(int all)
    {
        ref StatQuad small = ref Quad(FirstPoolQuad + all), large = ref Quad(FirstPoolQuad + 2 + all);
        return new StatQuad
        {
            Current = small.Current + large.Current,
            Peak = Quad(all).Peak,
            Allocated = small.Allocated + large.Allocated,
            Base = small.Base + large.Base,
        };
    }

    public void ResetPeak()
    {
        for (int i = FirstPoolQuad; i < TagQuads + _tagCount; i++)
            Quad(i).ResetPeak();
        Quad(AllBlocks).Peak = AllQuad(AllBlocks).Current;
        Quad(AllSegments).Peak = AllQuad(AllSegments).Current;
        OversizeAllocations.ResetPeak();
        OversizeSegments.ResetPeak();
    }

    public void ResetAccumulated()
    {
        for (int i = 0; i < TagQuads + _tagCount; i++)
            Quad(i).ResetAccumulated();
        OversizeAllocations.ResetAccumulated();
        OversizeSegments.ResetAccumulated();
        NumAllocRetries = NumOoms = NumDeviceAlloc = NumDeviceFree = 0;
    }

    public AllocatorStatistics Snapshot()
    {
        var tags = new Dictionary<string, TagStatistics>(_tagCount, StringComparer.Ordinal);
        for (int i = 0; i < _tagCount; i++)
        {
            ref StatQuad q = ref Quad(TagQuads + i);
            tags[_tagNames[i]] = new TagStatistics(_tagNames[i], q.Snapshot(0), q.Snapshot(1), q.Snapshot(2));
        }
        return new AllocatorStatistics
        {
            All = PoolStats.Snapshot(AllQuad(AllBlocks), AllQuad(AllSegments)),
            SmallPool = PoolStats.Snapshot(Quad(PoolQuad(true)), Quad(PoolQuad(true) + 1)),
            LargePool = PoolStats.Snapshot(Quad(PoolQuad(false)), Quad(PoolQuad(false) + 1)),
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
        if (_tagCount == _tagNames.Length)
            Array.Resize(ref _tagNames, _tagCount * 2);
        if (TagQuads + _tagCount + 1 > QuadCapacity)
            GrowQuads(2 * QuadCapacity);
        int index = _tagCount++;
        _tagNames[index] = tag;
        _tagIndex[tag] = index;
        return index;
    }

    private int QuadCapacity => (_quads.Length - CacheLine / sizeof(long)) / LongsPerQuad;

    /// <summary>Moves the quads to a larger pinned array (on the pinned heap, so the alignment computed here stays true).</summary>
    private unsafe void GrowQuads(int quads)
    {
        var next = GC.AllocateArray<long>(quads * LongsPerQuad + CacheLine / sizeof(long), pinned: true);
        nuint address = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(next));
        int nextBase = (int)((CacheLine - (int)(address % CacheLine)) % CacheLine / sizeof(long));
        if (_quads.Length != 0)
            _quads.AsSpan(_quadBase, (TagQuads + _tagCount) * LongsPerQuad).CopyTo(next.AsSpan(nextBase));
        _quads = next;
        _quadBase = nextBase;
        _quadPtr = (StatQuad*)Unsafe.AsPointer(ref next[nextBase]);
    }
}
