using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ZImage.Runtime.Memory;

/// <summary>
/// PyTorch's native CUDA caching allocator policy (<c>c10/cuda/CUDACachingAllocator.cpp</c>) over any
/// <see cref="IDeviceMemoryBackend"/>: 512 B rounding (optionally power-of-two divisions), small (&lt;= 1 MiB) and large pools,
/// 2 MiB / 20 MiB / 2 MiB-rounded segments, best fit by (stream, size, address), PyTorch's split and merge rules,
/// max_split_size for oversize blocks, the release-and-retry chain before out-of-memory, garbage collection and
/// <see cref="EmptyCache"/>. Thread-safe (one lock). The struct API (<see cref="AllocateBlock"/>/<see cref="FreeBlock"/>)
/// allocates nothing in steady state: block nodes live in a pooled array and each pool's free blocks in a size-class index
/// (<c>CachingAllocator.FreeBlockIndex.cs</c>) threaded through them.
/// </summary>
public sealed partial class CachingAllocator : BlockAllocatorBase, IBlockAllocator
{
    /// <summary>Every request is rounded to at least, and a multiple of, this (kMinBlockSize).</summary>
    public const long MinBlockSize = 512;
    /// <summary>Rounded sizes up to this go to the small pool (kSmallSize).</summary>
    public const long SmallSize = ByteSize.MiB;
    /// <summary>Small-pool segment size (kSmallBuffer).</summary>
    public const long SmallBuffer = 2 * ByteSize.MiB;
    /// <summary>Large requests below this get a <see cref="LargeBuffer"/> segment (kMinLargeAlloc).</summary>
    public const long MinLargeAlloc = 10 * ByteSize.MiB;
    /// <summary>Segment size for 1–10 MiB requests (kLargeBuffer).</summary>
    public const long LargeBuffer = 20 * ByteSize.MiB;
    /// <summary>Larger requests get segments rounded up to a multiple of this (kRoundLarge).</summary>
    public const long RoundLarge = 2 * ByteSize.MiB;
    /// <summary>
    /// The largest request any allocator here accepts (2⁶² bytes, 4 EiB): every rounding of a size up to this fits a
    /// <see cref="long"/>. Larger or negative sizes throw <see cref="ArgumentOutOfRangeException"/> naming the range
    /// and leave the allocator and its statistics untouched; no device comes near it, so a real request never does.
    /// </summary>
    public const long MaxAllocationBytes = 1L << 62;

    private const int None = -1;

    private readonly long _maxSplit;
    private readonly long _maxNonSplitRounding;
    private readonly bool _gcEnabled;
    private readonly bool _setFraction;
    private readonly long _allowedMax;
    private readonly double _gcThreshold;

    private Node[] _nodes = new Node[64];
    private int _nodeCount;
    private int _freeNode = None;
    private SegmentSlot[] _segments = new SegmentSlot[16];
    private int _segmentCount;
    private int _freeSegment = None;
    private int _liveSegments;
    // Free blocks per (stream, pool): _pools[2k] / _pools[2k + 1] are the small / large pool of the k-th stream seen
    // (stream 0 first, others on first use); every node carries its pool's index, so inserting and removing never has
    // to look the pool up.
    private FreeBlockIndex[] _pools = [new(0), new(0)];
    private long _smallGcCalls;
    private long _largeGcCalls;
    private long _nextId = 1;
    private long _allocatedBytes;
    private long _reservedBytes;
    private int[] _scratch = new int[64];
    private readonly bool _anyRoundupDivisions;
    private bool _disposed;

    /// <summary>Creates an allocator over <paramref name="backend"/>.</summary>
    /// <param name="backend">Where segments come from.</param>
    /// <param name="settings">Policy settings; null for PyTorch's defaults.</param>
    /// <param name="ownsBackend">Whether <see cref="Dispose"/> disposes the backend too.</param>
    public CachingAllocator(IDeviceMemoryBackend backend, AllocatorSettings? settings = null, bool ownsBackend = false)
        : base(backend, ownsBackend)
    {
        Settings = settings ?? AllocatorSettings.Default;
        Settings.Validate();
        _maxSplit = Settings.MaxSplitSizeBytes;
        _maxNonSplitRounding = Settings.MaxNonSplitRoundingBytes;
        _gcThreshold = Settings.GarbageCollectionThreshold;
        if (Settings.PerProcessMemoryFraction is { } fraction)
        {
            _setFraction = true;
            _allowedMax = (long)(fraction * backend.GetMemoryInfo().TotalBytes);
        }
        _gcEnabled = _setFraction && _gcThreshold > 0;
        for (int i = 0; i < AllocatorSettings.RoundupIntervals; i++)
            _anyRoundupDivisions |= Settings.GetRoundupPower2Divisions(1L << (20 + i)) > 1;
    }

    /// <summary>The policy settings.</summary>
    public AllocatorSettings Settings { get; }

    /// <inheritdoc />
    public string Name => Settings.ToString() is { Length: > 0 } s ? $"caching({s})" : "caching";

    /// <inheritdoc />
    public long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

    /// <inheritdoc />
    public long ReservedBytes => Volatile.Read(ref _reservedBytes);

    /// <summary>Reserved memory limit from <see cref="AllocatorSettings.PerProcessMemoryFraction"/>, or null when unlimited.</summary>
    public long? AllowedMemoryMaximum => _setFraction ? _allowedMax : null;

    // ---------------------------------------------------------------- policy functions (pure)

    /// <summary>PyTorch's <c>round_size</c>: the size a request of <paramref name="bytes"/> is served with.</summary>
    public static long RoundSize(long bytes, AllocatorSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (bytes < MinBlockSize)
            return MinBlockSize;
        if (bytes > MaxAllocationBytes)
            ThrowSizeOutOfRange(bytes);
        int divisions = settings.GetRoundupPower2Divisions(bytes);
        if (divisions > 1 && bytes > MinBlockSize * divisions)
            return RoundUpPower2NextDivision(bytes, divisions);
        return MinBlockSize * ((bytes + MinBlockSize - 1) / MinBlockSize);
    }

    /// <summary>PyTorch's <c>roundup_power2_next_division</c>: rounds up to the next of <paramref name="divisions"/> equal steps between powers of two (1200, 4 → 1280).</summary>
    public static long RoundUpPower2NextDivision(long size, int divisions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        if (size > MaxAllocationBytes)
            ThrowSizeOutOfRange(size);
        if (divisions < 2 || !BitOperations.IsPow2(divisions))
            throw new ArgumentOutOfRangeException(nameof(divisions), divisions, "Divisions must be a power of two >= 2.");
        if (BitOperations.IsPow2(size))
            return size;
        long floor = 1L << (63 - BitOperations.LeadingZeroCount((ulong)size));
        long step = floor >> BitOperations.Log2((uint)divisions);
        if (step == 0)
            return floor << 1;
        long roundedFloor = size & ~(step - 1);
        return roundedFloor == size ? size : roundedFloor + step;
    }

    /// <summary>PyTorch's <c>get_allocation_size</c>: the segment size requested from the device for a rounded request.</summary>
    public static long GetAllocationSize(long roundedBytes) =>
        (ulong)roundedBytes > MaxAllocationBytes ? ThrowSizeOutOfRange(roundedBytes)
        : roundedBytes <= SmallSize ? SmallBuffer
        : roundedBytes < MinLargeAlloc ? LargeBuffer
        : RoundLarge * ((roundedBytes + RoundLarge - 1) / RoundLarge);

    /// <summary>Whether a rounded request goes to the small pool (<c>size &lt;= 1 MiB</c>).</summary>
    public static bool IsSmallPool(long roundedBytes) => roundedBytes <= SmallSize;

    /// <summary>This allocator's <see cref="RoundSize(long, AllocatorSettings)"/>.</summary>
    public long RoundSize(long bytes) => RoundSize(bytes, Settings);

    // ---------------------------------------------------------------- struct API

    /// <inheritdoc />
    public BlockHandle AllocateBlock(long bytes, string tag, int stream = 0)
    {
        if (!AllocateCore(bytes, tag, stream, out var handle, out var oom))
            throw oom!;
        return handle;
    }

    /// <inheritdoc />
    public bool TryAllocateBlock(long bytes, string tag, out BlockHandle handle, int stream = 0) =>
        AllocateCore(bytes, tag, stream, out handle, out _);

    /// <inheritdoc />
    // Not inlined into callers: compiled on its own, the whole hit path (merge, pool insert, statistics) fits the JIT's
    // inlining budget; inlined into a caller's loop it would not.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void FreeBlock(BlockHandle handle)
    {
        long id;
        IAllocationObserver[] observers;
        using (_gate.EnterScope())
        {
            if (_disposed)
                return; // segments were returned with the allocator; a late free has nothing left to do
            int b = Resolve(handle);
            id = _nodes[b].Id;
            FreeCore(b);
            observers = _observers.Items;
            foreach (var o in observers)
                o.OnFree(id);
        }
    }

    /// <inheritdoc />
    public bool IsLive(BlockHandle handle)
    {
        using (_gate.EnterScope())
            return IsLiveNoLock(handle);
    }

    /// <inheritdoc />
    public BlockInfo GetBlockInfo(BlockHandle handle)
    {
        using (_gate.EnterScope())
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int b = Resolve(handle);
            ref Node n = ref _nodes[b];
            return new BlockInfo(n.Id, n.Address, n.Offset, n.Size, n.Requested, n.Stream, _segments[n.Segment].Segment!, _stats.TagName(n.Tag));
        }
    }

    // ---------------------------------------------------------------- class API

    /// <inheritdoc />
    public override DeviceAllocation Allocate(long bytes, string tag)
    {
        CheckRequest(bytes, tag);
        DeviceOutOfMemoryException? oom;
        using (_gate.EnterScope())
        {
            int b = AllocateLocked(bytes, tag, 0, out oom);
            if (b != None)
            {
                // Described under the allocation's lock rather than a second one.
                ref Node n = ref _nodes[b];
                var info = new BlockInfo(n.Id, n.Address, n.Offset, n.Size, n.Requested, n.Stream, _segments[n.Segment].Segment!, _stats.TagName(n.Tag));
                return new BlockAllocation(this, new BlockHandle(b, n.Generation), info);
            }
        }
        NotifyOom(bytes, tag, 0);
        throw oom!;
    }

    // ---------------------------------------------------------------- statistics and cache control

    /// <inheritdoc />
    public void EmptyCache()
    {
        using (_gate.EnterScope())
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ReleaseCachedBlocks();
        }
    }

    /// <summary>Number of live segments.</summary>
    public int SegmentCount
    {
        get { using (_gate.EnterScope()) return _liveSegments; }
    }

    /// <summary>Segments with their blocks in address order (like <c>torch.cuda.memory_snapshot()</c>); for diagnostics and tests.</summary>
    public IReadOnlyList<SegmentSnapshot> GetSnapshot()
    {
        using (_gate.EnterScope())
        {
            var perSegment = new Dictionary<int, List<BlockSnapshot>>();
            for (int i = 0; i < _nodeCount; i++)
            {
                ref Node n = ref _nodes[i];
                if (!n.Live)
                    continue;
                if (!perSegment.TryGetValue(n.Segment, out var list))
                    perSegment[n.Segment] = list = [];
                list.Add(new BlockSnapshot(n.Address, n.Offset, n.Size, n.Allocated ? n.Requested : 0, n.Allocated,
                    n.Allocated ? n.Id : 0, n.Allocated ? _stats.TagName(n.Tag) : null));
            }
            var result = new List<SegmentSnapshot>(perSegment.Count);
            foreach (var (s, blocks) in perSegment.OrderBy(kv => _segments[kv.Key].Segment!.Address))
            {
                blocks.Sort((a, b) => a.Offset.CompareTo(b.Offset));
                ref SegmentSlot slot = ref _segments[s];
                result.Add(new SegmentSnapshot(slot.Segment!.Address, slot.Size, slot.Small, slot.Stream, blocks));
            }
            return result;
        }
    }

    /// <summary>Returns every segment to the backend (live blocks included) and disposes an owned backend. Later frees are ignored.</summary>
    public void Dispose()
    {
        using (_gate.EnterScope())
        {
            if (_disposed)
                return;
            _disposed = true;
            for (int s = 0; s < _segmentCount; s++)
            {
                if (_segments[s].Segment is { } seg)
                {
                    _backend.FreeSegment(seg);
                    _segments[s].Segment = null;
                }
            }
            _liveSegments = 0;
            Volatile.Write(ref _reservedBytes, 0);
            Volatile.Write(ref _allocatedBytes, 0);
        }
        if (_ownsBackend)
            _backend.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} on {_backend.Name}";

    // ---------------------------------------------------------------- malloc

    // The cache hit is the hot path and stays small; a miss (device allocation, release-and-retry, OOM) is out of line.
    // Nothing here writes a BlockInfo: copying that struct (two object references) into an out parameter cost more than
    // the whole best-fit search.
    [MethodImpl(MethodImplOptions.NoInlining)] // see FreeBlock
    private bool AllocateCore(long bytes, string tag, int stream, out BlockHandle handle, out DeviceOutOfMemoryException? oom)
    {
        CheckRequest(bytes, tag);
        using (_gate.EnterScope())
        {
            int b = AllocateLocked(bytes, tag, stream, out oom);
            if (b != None)
            {
                handle = new BlockHandle(b, _nodes[b].Generation);
                return true;
            }
        }
        handle = default;
        NotifyOom(bytes, tag, stream);
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CheckRequest(long bytes, string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if ((ulong)bytes > MaxAllocationBytes) // one compare rejects both negative and overflowing sizes
            ThrowSizeOutOfRange(bytes);
    }

    /// <summary>PyTorch's malloc under the lock: the allocated node, or <see cref="None"/> with <paramref name="oom"/> set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int AllocateLocked(long bytes, string tag, int stream, out DeviceOutOfMemoryException? oom)
    {
        if (_disposed)
            ThrowDisposed();
        oom = null;
        int tagIndex = _stats.TagIndex(tag); // registered even if the request then fails, as the statistics have always shown
        long size = _anyRoundupDivisions ? RoundSize(bytes, Settings) : bytes <= MinBlockSize ? MinBlockSize : (bytes + (MinBlockSize - 1)) & ~(MinBlockSize - 1);
        bool small = size <= SmallSize;
        int b = GetFreeBlock(stream, size, small);
        if (b == None)
        {
            b = AllocateOnMiss(stream, size, small, bytes, tag, out oom);
            if (b == None)
                return None;
        }
        AllocFoundBlock(b, size, bytes, small, tagIndex);
        var observers = _observers.Items;
        if (observers.Length != 0)
            NotifyAlloc(observers, _nodes[b].Id, _nodes[b].Size, bytes, tag, stream);
        return b;
    }

    private void NotifyOom(long bytes, string tag, int stream)
    {
        foreach (var o in _observers.Items)
            o.OnOom(bytes, tag, stream);
    }

    /// <summary>PyTorch's malloc after a cache miss: gc, alloc_block, release_available_cached_blocks + retry, release_cached_blocks + retry, OOM.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int AllocateOnMiss(int stream, long size, bool small, long bytes, string tag, out DeviceOutOfMemoryException? oom)
    {
        oom = null;
        long allocSize = GetAllocationSize(size);
        if (_gcEnabled)
            GarbageCollectCachedBlocks();
        int b = AllocBlock(allocSize, small, stream, isRetry: false);
        if (b == None && ReleaseAvailableCachedBlocks(stream, size, small))
            b = AllocBlock(allocSize, small, stream, isRetry: false);
        if (b == None)
        {
            ReleaseCachedBlocks();
            b = AllocBlock(allocSize, small, stream, isRetry: true);
        }
        if (b == None)
        {
            _stats.NumOoms++;
            oom = CreateOom(bytes, allocSize, tag);
        }
        return b;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NotifyAlloc(IAllocationObserver[] observers, long id, long size, long bytes, string tag, int stream)
    {
        foreach (var o in observers)
            o.OnAlloc(id, size, bytes, tag, stream);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() => throw new ObjectDisposedException(GetType().FullName);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int GetFreeBlock(int stream, long size, bool small)
    {
        int index = PoolIndex(stream, small); // before reading _pools: a stream's first use grows it
        FreeBlockIndex pool = _pools[index];
        if (_gcEnabled)
        {
            if (small) _smallGcCalls++;
            else _largeGcCalls++;
        }
        int c = pool.LowerBound(_nodes, size);
        if (c == None)
            return None;
        long found = _nodes[c].Size;
        // Oversize blocks are not handed to normal requests.
        if (size < _maxSplit && found >= _maxSplit)
            return None;
        // Oversize requests accept only a near fit.
        if (size >= _maxSplit && found >= size + _maxNonSplitRounding)
            return None;
        pool.Remove(_nodes, c);
        _nodes[c].InPool = false;
        return c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AllocFoundBlock(int b, long size, long requested, bool small, int tagIndex)
    {
        ref Node blk = ref _nodes[b];
        bool alreadySplit = blk.Prev != None || blk.Next != None;
        long remaining = blk.Size - size;
        bool split = small ? remaining >= MinBlockSize : size < _maxSplit && remaining > SmallSize;
        long splitCount = 0, splitBytes = 0;
        if (split)
        {
            int r = NewNode();
            blk = ref _nodes[b]; // NewNode may have grown the array
            ref Node rem = ref _nodes[r];
            rem.Size = remaining;
            rem.Address = blk.Address + size;
            rem.Offset = blk.Offset + size;
            rem.Segment = blk.Segment;
            rem.Stream = blk.Stream;
            rem.Small = blk.Small;
            rem.Pool = blk.Pool;
            rem.Prev = b;
            rem.Next = blk.Next;
            if (rem.Next != None)
                _nodes[rem.Next].Prev = r;
            blk.Next = r;
            blk.Size = size;
            InsertIntoPool(r);
            // An already-split inactive block shrank by size, or a new inactive split block appeared.
            splitCount = alreadySplit ? 0 : 1;
            splitBytes = alreadySplit ? -size : remaining;
        }
        else if (alreadySplit)
        {
            splitCount = -1;
            splitBytes = -blk.Size;
        }

        blk.Allocated = true;
        blk.Requested = requested;
        blk.Rounded = size;
        blk.Tag = tagIndex;
        blk.Id = _nextId++;
        _stats.BlockAllocated(small, blk.Size, requested, size, tagIndex, blk.Size >= _maxSplit, splitCount, splitBytes);
        Volatile.Write(ref _allocatedBytes, _allocatedBytes + blk.Size);
    }

    private int AllocBlock(long allocSize, bool small, int stream, bool isRetry)
    {
        if (isRetry)
            _stats.NumAllocRetries++;
        if (_setFraction && _reservedBytes + allocSize > _allowedMax)
            return None;
        if (!_backend.TryAllocateSegment(allocSize, out var segment) || segment is null)
            return None;

        int s = NewSegmentSlot();
        ref SegmentSlot slot = ref _segments[s];
        slot.Segment = segment;
        slot.Size = allocSize;
        slot.Small = small;
        slot.Stream = stream;
        _liveSegments++;

        int b = NewNode();
        ref Node n = ref _nodes[b];
        n.Size = allocSize;
        n.Address = segment.Address;
        n.Offset = 0;
        n.Segment = s;
        n.Stream = stream;
        n.Small = small;
        n.Pool = PoolIndex(stream, small);
        n.Prev = None;
        n.Next = None;
        _stats.SegmentAllocated(small, allocSize, allocSize >= _maxSplit);
        Volatile.Write(ref _reservedBytes, _reservedBytes + allocSize);
        return b;
    }

    // ---------------------------------------------------------------- free

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void FreeCore(int b)
    {
        ref Node blk = ref _nodes[b];
        bool small = blk.Small;
        long originalSize = blk.Size;
        blk.Allocated = false;
        blk.Generation = NextGeneration(blk.Generation);
        Volatile.Write(ref _allocatedBytes, _allocatedBytes - originalSize);

        // Inactive-split change: each merged neighbour was an inactive split block and is gone; the merged block is one
        // if its segment is still split. An unsplit block that stays unsplit changes nothing.
        int prev = blk.Prev, next = blk.Next;
        if ((prev & next) == None)
        {
            _stats.BlockFreed(small, originalSize, blk.Requested, blk.Rounded, blk.Tag, originalSize >= _maxSplit);
            InsertIntoPool(b); // both links are None: an unsplit segment-sized block
            return;
        }
        long splitCount = 0, splitBytes = 0;
        if (prev != None && !_nodes[prev].Allocated)
        {
            splitCount--;
            splitBytes -= MergeInto(b, prev);
        }
        if (next != None && !_nodes[next].Allocated)
        {
            splitCount--;
            splitBytes -= MergeInto(b, next);
        }
        InsertIntoPool(b);
        ref Node merged = ref _nodes[b];
        if (merged.Prev != None || merged.Next != None)
        {
            splitCount++;
            splitBytes += merged.Size;
        }
        _stats.BlockFreed(small, originalSize, merged.Requested, merged.Rounded, merged.Tag, originalSize >= _maxSplit, splitCount, splitBytes);
    }

    /// <summary>Merges the free neighbour <paramref name="src"/> into <paramref name="dst"/>; returns the bytes it held.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long MergeInto(int dst, int src)
    {
        ref Node d = ref _nodes[dst];
        ref Node s = ref _nodes[src];
        RemoveFromPool(src);
        if (d.Prev == src)
        {
            d.Address = s.Address;
            d.Offset = s.Offset;
            d.Prev = s.Prev;
            if (d.Prev != None)
                _nodes[d.Prev].Next = dst;
        }
        else
        {
            d.Next = s.Next;
            if (d.Next != None)
                _nodes[d.Next].Prev = dst;
        }
        long size = s.Size;
        d.Size += size;
        ReleaseNode(src);
        return size;
    }

    // ---------------------------------------------------------------- releasing cached segments

    /// <summary>Frees one cached oversize block big enough, or several oversize blocks from the largest down (PyTorch's release_available_cached_blocks).</summary>
    private bool ReleaseAvailableCachedBlocks(int stream, long size, bool small)
    {
        if (_maxSplit == long.MaxValue)
            return false;
        long key = Math.Max(size, _maxSplit);
        int index = PoolIndex(stream, small); // before reading _pools: a stream's first use grows it
        FreeBlockIndex pool = _pools[index];
        int it = pool.LowerBound(_nodes, key);
        if (it == None)
        {
            // No single block is large enough: free oversize blocks of this stream starting with the largest.
            int count = pool.CopyTo(_nodes, ref _scratch, 0);
            _scratch.AsSpan(0, count).Sort(new KeyOrder(_nodes));
            long released = 0;
            for (int p = count - 1; p >= 0 && released < key && _nodes[_scratch[p]].Size >= _maxSplit; p--)
            {
                int cur = _scratch[p];
                if (IsUnsplit(cur))
                {
                    released += _nodes[cur].Size;
                    ReleaseBlock(cur);
                }
            }
            return released >= key;
        }
        if (!IsUnsplit(it))
            return false;
        ReleaseBlock(it);
        return true;
    }

    /// <summary>Frees every unsplit cached block of both pools (PyTorch's release_cached_blocks / empty_cache).</summary>
    private void ReleaseCachedBlocks()
    {
        ReleaseUnsplit(small: true);
        ReleaseUnsplit(small: false);
    }

    private void ReleaseUnsplit(bool small)
    {
        int count = CollectInOrder(small);
        for (int i = 0; i < count; i++)
        {
            int b = _scratch[i];
            if (IsUnsplit(b))
                ReleaseBlock(b);
        }
    }

    /// <summary>PyTorch's garbage_collect_cached_blocks: frees old unsplit large blocks until reserved is back under the threshold.</summary>
    private void GarbageCollectCachedBlocks()
    {
        long gcThreshold = (long)(_gcThreshold * _allowedMax);
        if (_reservedBytes <= gcThreshold)
            return;
        long target = _reservedBytes - gcThreshold;
        long reclaimed = 0;
        long totalAge = 0;
        long freeable = 0;
        int count = CollectInOrder(small: false);
        for (int i = 0; i < count; i++)
        {
            int b = _scratch[i];
            if (IsUnsplit(b))
            {
                totalAge += _largeGcCalls - _nodes[b].GcBase;
                freeable++;
            }
        }
        if (freeable == 0)
            return;
        bool freed = true;
        while (reclaimed < target && freed && freeable > 0)
        {
            double ageThreshold = (double)totalAge / freeable;
            freed = false;
            count = CollectInOrder(small: false);
            for (int i = 0; i < count; i++)
            {
                int b = _scratch[i];
                long age = _largeGcCalls - _nodes[b].GcBase;
                if (IsUnsplit(b) && age >= ageThreshold)
                {
                    freed = true;
                    reclaimed += _nodes[b].Size;
                    totalAge -= age;
                    freeable--;
                    ReleaseBlock(b);
                }
            }
        }
    }

    private void ReleaseBlock(int b)
    {
        ref Node n = ref _nodes[b];
        Debug.Assert(!n.Allocated && n.Prev == None && n.Next == None);
        RemoveFromPool(b);
        int s = n.Segment;
        ref SegmentSlot slot = ref _segments[s];
        _backend.FreeSegment(slot.Segment!);
        _stats.SegmentFreed(n.Small, n.Size, n.Size >= _maxSplit);
        Volatile.Write(ref _reservedBytes, _reservedBytes - n.Size);
        slot.Segment = null;
        slot.NextFree = _freeSegment;
        _freeSegment = s;
        _liveSegments--;
        ReleaseNode(b);
    }

    private bool IsUnsplit(int b) => _nodes[b].Prev == None && _nodes[b].Next == None;

    // ---------------------------------------------------------------- OOM message

    private DeviceOutOfMemoryException CreateOom(long requested, long allocSize, string tag)
    {
        var info = _backend.GetMemoryInfo();
        long reservedUnallocated = _reservedBytes - _allocatedBytes;
        string advice;
        if (_setFraction && _reservedBytes + allocSize > _allowedMax)
            advice = $"The per-process limit of {ByteSize.Format(_allowedMax)} (per_process_memory_fraction) was reached; raise it or free tensors.";
        else if (_maxSplit == long.MaxValue && reservedUnallocated >= Math.Max(allocSize, info.TotalBytes / 20))
            advice = $"{ByteSize.Format(reservedUnallocated)} is reserved but unallocated (fragmentation). If reserved but unallocated memory is large, " +
                     "try setting max_split_size_mb (e.g. AllocatorSettings.Parse(\"max_split_size_mb:128\"), PYTORCH_CUDA_ALLOC_CONF syntax) to avoid fragmentation.";
        else if (reservedUnallocated >= Math.Max(allocSize, info.TotalBytes / 20))
            advice = $"{ByteSize.Format(reservedUnallocated)} is reserved but unallocated (split-segment fragmentation); a smaller max_split_size_mb " +
                     "or freeing long-lived small tensors earlier may help.";
        else
            advice = "Free tensors that are no longer needed, or lower the resolution / batch size.";
        return new DeviceOutOfMemoryException(requested, _allocatedBytes, _reservedBytes, info.FreeBytes, info.TotalBytes, tag, advice);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static long ThrowSizeOutOfRange(long bytes) =>
        throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"Allocation size {bytes} bytes must lie in 0..{MaxAllocationBytes} bytes (4 EiB).");

    // ---------------------------------------------------------------- handles and node pool

    private bool IsLiveNoLock(BlockHandle h) =>
        !_disposed && h.Generation != 0 && (uint)h.Index < (uint)_nodeCount && _nodes[h.Index].Generation == h.Generation && _nodes[h.Index].Allocated;

    private int Resolve(BlockHandle h)
    {
        if (!IsLiveNoLock(h))
            ThrowStale(h);
        return h.Index;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowStale(BlockHandle h) =>
        throw new ObjectDisposedException(h.ToString(),
            h.Generation == 0 ? "The block handle was never issued by an allocator." : "The device block was already freed (double free or use after free).");

    private static int NextGeneration(int g) => g == int.MaxValue ? 1 : g + 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int NewNode()
    {
        int i;
        if (_freeNode != None)
        {
            i = _freeNode;
            _freeNode = _nodes[i].NextFree;
        }
        else
        {
            if (_nodeCount == _nodes.Length)
                Array.Resize(ref _nodes, _nodes.Length * 2);
            i = _nodeCount++;
            _nodes[i].Generation = 1;
        }
        // Not cleared: a recycled node was released free and out of its pool, and both callers set every field a free
        // block uses (the allocation fields are written when it is handed out).
        ref Node n = ref _nodes[i];
        Debug.Assert(!n.Allocated && !n.InPool);
        n.Live = true;
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseNode(int i)
    {
        ref Node n = ref _nodes[i];
        n.Live = false;
        n.Generation = NextGeneration(n.Generation);
        n.NextFree = _freeNode;
        _freeNode = i;
    }

    private int NewSegmentSlot()
    {
        if (_freeSegment != None)
        {
            int s = _freeSegment;
            _freeSegment = _segments[s].NextFree;
            return s;
        }
        if (_segmentCount == _segments.Length)
            Array.Resize(ref _segments, _segments.Length * 2);
        return _segmentCount++;
    }

    // ---------------------------------------------------------------- free-block pools

    /// <summary>The index into <see cref="_pools"/> of a stream's small or large pool; creates them on a stream's first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int PoolIndex(int stream, bool small) => (stream == 0 ? 0 : OtherStreamPools(stream)) + (small ? 0 : 1);

    private int OtherStreamPools(int stream)
    {
        for (int i = 2; i < _pools.Length; i += 2)
        {
            if (_pools[i].Stream == stream)
                return i;
        }
        _pools = [.. _pools, new FreeBlockIndex(stream), new FreeBlockIndex(stream)];
        return _pools.Length - 2;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void InsertIntoPool(int b)
    {
        ref Node n = ref _nodes[b];
        n.InPool = true;
        if (_gcEnabled)
            n.GcBase = n.Small ? _smallGcCalls : _largeGcCalls;
        _pools[n.Pool].Insert(_nodes, b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RemoveFromPool(int b)
    {
        ref Node n = ref _nodes[b];
        if (!n.InPool)
            return;
        n.InPool = false;
        _pools[n.Pool].Remove(_nodes, b);
    }

    /// <summary>
    /// Copies one pool kind's free blocks of every stream into <see cref="_scratch"/> in PyTorch's set order (stream,
    /// size, address), for the release paths, which free blocks while they iterate; returns the count.
    /// </summary>
    private int CollectInOrder(bool small)
    {
        int count = 0;
        for (int i = small ? 0 : 1; i < _pools.Length; i += 2)
            count = _pools[i].CopyTo(_nodes, ref _scratch, count);
        _scratch.AsSpan(0, count).Sort(new KeyOrder(_nodes));
        return count;
    }

    private struct Node
    {
        public long Size;
        public long Address;
        public long Offset;
        public long Requested;
        public long Rounded;
        public long Id;
        public long GcBase;
        public int Segment;
        public int Prev;
        public int Next;
        public int NextFree; // free-list link of recycled nodes
        public int FreePrev; // links within the node's FreeBlockIndex class while it is cached
        public int FreeNext;
        public int FreeClass;
        public int Pool; // index into _pools
        public int Stream;
        public int Tag;
        public int Generation;
        public bool Allocated;
        public bool Small;
        public bool InPool;
        public bool Live;
    }

    private struct SegmentSlot
    {
        public DeviceSegment? Segment;
        public long Size;
        public int NextFree;
        public int Stream;
        public bool Small;
    }
}
