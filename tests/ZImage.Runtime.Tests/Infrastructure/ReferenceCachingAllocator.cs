using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Infrastructure;

/// <summary>
/// A deliberately simple and slow model of PyTorch's native CUDA caching allocator
/// (<c>c10/cuda/CUDACachingAllocator.cpp</c>, summarised in docs/allocator.md section 1), written from those rules and
/// used as an oracle for <see cref="CachingAllocator"/>. State is a list of segments in address order, each holding its
/// blocks in address order; a block is cached (in its pool) exactly when it is not allocated, and every search is a
/// linear scan. Rounding is delegated to <see cref="CachingAllocator.RoundSize(long, AllocatorSettings)"/> and
/// <see cref="CachingAllocator.GetAllocationSize"/> (not what the oracle checks).
/// <para>
/// It runs on its own device model that mirrors <see cref="SimulatedDeviceBackend"/>: segments are placed at strictly
/// increasing addresses starting at <see cref="SimulatedDeviceOptions.BaseAddress"/>, packed with no alignment and
/// never reused, and a segment of n bytes is granted only while reserved + n &lt;= capacity, so block addresses can be
/// compared with the real allocator directly.
/// </para>
/// </summary>
internal sealed class ReferenceCachingAllocator
{
    private const long MinBlockSize = 512;           // kMinBlockSize
    private const long SmallSize = ByteSize.MiB;     // kSmallSize

    private readonly AllocatorSettings _settings;
    private readonly long _capacity;
    private readonly long _maxSplit;                 // long.MaxValue when max_split_size is unset
    private readonly long _maxNonSplitRounding;
    private readonly long? _allowedMax;              // allowed_memory_maximum when a fraction is set
    private readonly bool _gcEnabled;                // set_fraction && garbage_collection_threshold > 0
    private readonly List<Segment> _segments = [];   // address order (addresses only grow, removal keeps order)
    private readonly Dictionary<string, TagStats> _tags = new(StringComparer.Ordinal);
    private readonly List<string> _tagOrder = [];
    private readonly PoolStats _all = new(), _small = new(), _large = new();
    private readonly Stat _oversizeAllocations = new(), _oversizeSegments = new();
    private long _nextAddress = new SimulatedDeviceOptions().BaseAddress;
    private long _smallPoolCalls;                    // get_free_blocks_call_count of the small pool
    private long _largePoolCalls;                    // ... of the large pool
    private long _nextId = 1;
    private long _numAllocRetries, _numOoms, _numDeviceAlloc, _numDeviceFree;

    public ReferenceCachingAllocator(long capacityBytes, AllocatorSettings settings)
    {
        _settings = settings;
        _capacity = capacityBytes;
        _maxSplit = settings.MaxSplitSizeBytes;
        _maxNonSplitRounding = settings.MaxNonSplitRoundingBytes;
        if (settings.PerProcessMemoryFraction is { } fraction)
            _allowedMax = (long)(fraction * capacityBytes);
        _gcEnabled = _allowedMax is not null && settings.GarbageCollectionThreshold > 0;
    }

    /// <summary>One device allocation.</summary>
    public sealed class Segment(long address, long size, bool small, int stream)
    {
        public long Address { get; } = address;
        public long Size { get; } = size;
        public bool Small { get; } = small;
        public int Stream { get; } = stream;
        /// <summary>The blocks in address order; they tile the segment.</summary>
        public List<Block> Blocks { get; } = [];
    }

    /// <summary>One block of a segment.</summary>
    public sealed class Block(Segment segment, long address, long size)
    {
        public Segment Segment { get; } = segment;
        public long Address { get; set; } = address;
        public long Size { get; set; } = size;
        public bool Allocated { get; set; }
        public long Requested { get; set; }
        public long Rounded { get; set; }
        public long Id { get; set; }
        public string? Tag { get; set; }
        /// <summary>The pool's get_free_block call count when the block was (re)inserted into the pool.</summary>
        public long GcBase { get; set; }
        public long Offset => Address - Segment.Address;
        public int Stream => Segment.Stream;
        public bool IsSplit => Segment.Blocks.Count > 1;
    }

    // ---------------------------------------------------------------- coverage counters (which rare paths ran)

    /// <summary>Segments freed by garbage_collect_cached_blocks.</summary>
    public long GcReleasedSegments { get; private set; }
    /// <summary>Segments freed by release_available_cached_blocks.</summary>
    public long AvailableReleasedSegments { get; private set; }
    /// <summary>release_available_cached_blocks calls that had to free more than one oversize block.</summary>
    public long MultiBlockAvailableReleases { get; private set; }
    /// <summary>Oversize requests served from a cached oversize block.</summary>
    public long OversizeReuses { get; private set; }
    /// <summary>Successful allocations on a stream other than 0.</summary>
    public long OtherStreamAllocations { get; private set; }

    // ---------------------------------------------------------------- public operations

    public long ReservedBytes => _segments.Sum(s => s.Size);

    public long AllocatedBytes => AllBlocks().Where(b => b.Allocated).Sum(b => b.Size);

    /// <summary>PyTorch's <c>malloc</c>: returns the block, or null on out-of-memory.</summary>
    public Block? Allocate(long bytes, string tag, int stream = 0)
    {
        Tag(tag); // CachingAllocator registers the tag before trying (a tag whose requests all failed shows zeros)
        var inactiveBefore = InactiveSplit();
        long size = CachingAllocator.RoundSize(bytes, _settings);
        bool small = size <= SmallSize;
        long allocSize = CachingAllocator.GetAllocationSize(size);

        var block = GetFreeBlock(stream, size, small);
        if (block is not null && size >= _maxSplit)
            OversizeReuses++;
        if (block is null)
        {
            if (_gcEnabled)
                GarbageCollectCachedBlocks();
            block = AllocBlock(allocSize, small, stream, isRetry: false);
            if (block is null && ReleaseAvailableCachedBlocks(stream, size, small))
                block = AllocBlock(allocSize, small, stream, isRetry: false);
            if (block is null)
            {
                ReleaseCachedBlocks();
                block = AllocBlock(allocSize, small, stream, isRetry: true);
            }
        }
        if (block is null)
        {
            _numOoms++;
            return null;
        }

        AllocFoundBlock(block, size, bytes, small, tag);
        if (stream != 0)
            OtherStreamAllocations++;
        ApplyInactiveSplitChange(inactiveBefore);
        return block;
    }

    /// <summary>PyTorch's <c>free</c> + <c>free_block</c> (no cross-stream uses, so never deferred).</summary>
    public void Free(Block block)
    {
        if (!block.Allocated)
            throw new InvalidOperationException("double free in the reference model");
        var inactiveBefore = InactiveSplit();
        bool small = block.Segment.Small;
        foreach (var p in Pools(small))
        {
            p.Allocation.Decrease(1);
            p.AllocatedBytes.Decrease(block.Size);
            p.RequestedBytes.Decrease(block.Requested);
            p.RoundedBytes.Decrease(block.Rounded);
        }
        if (block.Size >= _maxSplit)
            _oversizeAllocations.Decrease(1);
        var t = _tags[block.Tag!];
        t.Allocation.Decrease(1);
        t.AllocatedBytes.Decrease(block.Size);
        t.RequestedBytes.Decrease(block.Requested);

        block.Allocated = false;
        block.Requested = block.Rounded = block.Id = 0;
        block.Tag = null;

        // try_merge_blocks with prev and next: only free neighbours of the same segment.
        var blocks = block.Segment.Blocks;
        int i = blocks.IndexOf(block);
        if (i + 1 < blocks.Count && !blocks[i + 1].Allocated)
        {
            block.Size += blocks[i + 1].Size;
            blocks.RemoveAt(i + 1);
        }
        if (i > 0 && !blocks[i - 1].Allocated)
        {
            block.Address = blocks[i - 1].Address;
            block.Size += blocks[i - 1].Size;
            blocks.RemoveAt(i - 1);
        }
        block.GcBase = PoolCalls(small); // insert_into_blocks
        ApplyInactiveSplitChange(inactiveBefore);
    }

    /// <summary>PyTorch's <c>emptyCache</c> = <c>release_cached_blocks</c>.</summary>
    public void EmptyCache() => ReleaseCachedBlocks();

    public void ResetPeakStats()
    {
        foreach (var s in AllStats())
            s.Peak = s.Current;
    }

    public void ResetAccumulatedStats()
    {
        foreach (var s in AllStats())
            s.Allocated = s.Freed = 0;
        _numAllocRetries = _numOoms = _numDeviceAlloc = _numDeviceFree = 0;
    }

    public AllocatorStatistics GetStatistics() => new()
    {
        All = _all.ToStatistics(),
        SmallPool = _small.ToStatistics(),
        LargePool = _large.ToStatistics(),
        OversizeAllocations = _oversizeAllocations.Value,
        OversizeSegments = _oversizeSegments.Value,
        NumAllocRetries = _numAllocRetries,
        NumOoms = _numOoms,
        NumDeviceAlloc = _numDeviceAlloc,
        NumDeviceFree = _numDeviceFree,
        Tags = _tagOrder.ToDictionary(n => n, n => new TagStatistics(n, _tags[n].Allocation.Value, _tags[n].AllocatedBytes.Value, _tags[n].RequestedBytes.Value)),
    };

    /// <summary>The segments as <see cref="CachingAllocator.GetSnapshot"/> reports them.</summary>
    public IReadOnlyList<SegmentSnapshot> GetSnapshot() =>
        _segments.Select(s => new SegmentSnapshot(s.Address, s.Size, s.Small, s.Stream,
            s.Blocks.Select(b => new BlockSnapshot(b.Address, b.Offset, b.Size, b.Requested, b.Allocated, b.Id, b.Tag)).ToList())).ToList();

    // ---------------------------------------------------------------- malloc steps

    /// <summary>get_free_block: the smallest cached block (lowest address on ties) of this stream and pool that fits.</summary>
    private Block? GetFreeBlock(int stream, long size, bool small)
    {
        if (_gcEnabled)
        {
            if (small) _smallPoolCalls++;
            else _largePoolCalls++;
        }
        var candidate = CachedBlocks(small, stream).FirstOrDefault(b => b.Size >= size);
        if (candidate is null)
            return null;
        if (size < _maxSplit && candidate.Size >= _maxSplit)
            return null; // oversize blocks are not handed to normal requests
        if (size >= _maxSplit && candidate.Size >= size + _maxNonSplitRounding)
            return null; // oversize requests accept only a near fit
        return candidate;
    }

    /// <summary>alloc_block: cudaMalloc of a new segment, refused beyond the memory fraction or the device capacity.</summary>
    private Block? AllocBlock(long allocSize, bool small, int stream, bool isRetry)
    {
        if (isRetry)
            _numAllocRetries++;
        long reserved = ReservedBytes;
        if (_allowedMax is { } allowed && reserved + allocSize > allowed)
            return null;
        if (allocSize > _capacity - reserved)
            return null; // the simulated device is full (no address is consumed)
        var segment = new Segment(_nextAddress, allocSize, small, stream);
        _nextAddress += allocSize;
        _segments.Add(segment);
        var block = new Block(segment, segment.Address, allocSize);
        segment.Blocks.Add(block);
        _numDeviceAlloc++;
        foreach (var p in Pools(small))
        {
            p.Segment.Increase(1);
            p.ReservedBytes.Increase(allocSize);
        }
        if (allocSize >= _maxSplit)
            _oversizeSegments.Increase(1);
        return block;
    }

    /// <summary>should_split + alloc_found_block: keep the front, return a big enough remainder to the pool.</summary>
    private void AllocFoundBlock(Block block, long size, long requested, bool small, string tag)
    {
        long remaining = block.Size - size;
        bool split = small ? remaining >= MinBlockSize : size < _maxSplit && remaining > SmallSize;
        if (split)
        {
            var blocks = block.Segment.Blocks;
            var rest = new Block(block.Segment, block.Address + size, remaining) { GcBase = PoolCalls(small) };
            blocks.Insert(blocks.IndexOf(block) + 1, rest);
            block.Size = size;
        }
        block.Allocated = true;
        block.Requested = requested;
        block.Rounded = size;
        block.Tag = tag;
        block.Id = _nextId++;
        foreach (var p in Pools(small))
        {
            p.Allocation.Increase(1);
            p.AllocatedBytes.Increase(block.Size);
            p.RequestedBytes.Increase(requested);
            p.RoundedBytes.Increase(size);
        }
        if (block.Size >= _maxSplit)
            _oversizeAllocations.Increase(1);
        var t = _tags[tag];
        t.Allocation.Increase(1);
        t.AllocatedBytes.Increase(block.Size);
        t.RequestedBytes.Increase(requested);
    }

    // ---------------------------------------------------------------- releasing cached segments

    /// <summary>
    /// release_available_cached_blocks (only with max_split_size set): free one cached block of this stream and pool
    /// that is &gt;= max(size, max_split_size); if there is none, free this stream's oversize blocks from the largest
    /// down until the freed total reaches that key. True when enough was freed.
    /// </summary>
    private bool ReleaseAvailableCachedBlocks(int stream, long size, bool small)
    {
        if (_maxSplit == long.MaxValue)
            return false;
        long key = Math.Max(size, _maxSplit);
        var cached = CachedBlocks(small, stream);
        if (cached.FirstOrDefault(b => b.Size >= key) is { } single)
        {
            ReleaseBlock(single);
            AvailableReleasedSegments++;
            return true;
        }
        long released = 0;
        int count = 0;
        foreach (var b in cached.Where(b => b.Size >= _maxSplit).Reverse())
        {
            if (released >= key)
                break;
            released += b.Size;
            ReleaseBlock(b);
            count++;
        }
        AvailableReleasedSegments += count;
        if (count > 1)
            MultiBlockAvailableReleases++;
        return released >= key;
    }

    /// <summary>release_cached_blocks: free every cached block that is a whole segment, in both pools.</summary>
    private void ReleaseCachedBlocks()
    {
        foreach (var b in AllBlocks().Where(b => !b.Allocated && !b.IsSplit).ToList())
            ReleaseBlock(b);
    }

    /// <summary>
    /// garbage_collect_cached_blocks: when reserved exceeds threshold * allowed, free whole-segment cached large
    /// blocks whose age (large-pool get_free_block calls since caching) is at least the average age, pass after pass,
    /// until reserved - threshold * allowed bytes are reclaimed or nothing more goes.
    /// </summary>
    private void GarbageCollectCachedBlocks()
    {
        long threshold = (long)(_settings.GarbageCollectionThreshold * _allowedMax!.Value);
        long reserved = ReservedBytes;
        if (reserved <= threshold)
            return;
        long target = reserved - threshold;
        long reclaimed = 0;
        bool freed = true;
        while (reclaimed < target && freed)
        {
            var freeable = AllBlocks().Where(b => !b.Segment.Small && !b.Allocated && !b.IsSplit).ToList();
            if (freeable.Count == 0)
                return;
            double averageAge = (double)freeable.Sum(Age) / freeable.Count;
            freed = false;
            foreach (var b in freeable.Where(b => Age(b) >= averageAge))
            {
                freed = true;
                reclaimed += b.Size;
                ReleaseBlock(b);
                GcReleasedSegments++;
            }
        }

        long Age(Block b) => _largePoolCalls - b.GcBase;
    }

    /// <summary>release_block: cudaFree of a cached block that is its whole segment.</summary>
    private void ReleaseBlock(Block block)
    {
        // PyTorch would cudaFree a split block's pointer here; no reachable state hands one over (see the tests' notes).
        if (block.Allocated || block.IsSplit)
            throw new InvalidOperationException($"the reference model was asked to release a split or allocated block at 0x{block.Address:X}");
        var segment = block.Segment;
        _segments.Remove(segment);
        _numDeviceFree++;
        foreach (var p in Pools(segment.Small))
        {
            p.Segment.Decrease(1);
            p.ReservedBytes.Decrease(segment.Size);
        }
        if (segment.Size >= _maxSplit)
            _oversizeSegments.Decrease(1);
    }

    // ---------------------------------------------------------------- queries

    private IEnumerable<Block> AllBlocks() => _segments.SelectMany(s => s.Blocks);

    /// <summary>The pool's cached blocks of one stream in (size, address) order: PyTorch's BlockComparatorSize.</summary>
    private List<Block> CachedBlocks(bool small, int stream) =>
        AllBlocks().Where(b => !b.Allocated && b.Segment.Small == small && b.Stream == stream)
            .OrderBy(b => b.Size).ThenBy(b => b.Address).ToList();

    private long PoolCalls(bool small) => small ? _smallPoolCalls : _largePoolCalls;

    private PoolStats[] Pools(bool small) => [_all, small ? _small : _large];

    private void Tag(string tag)
    {
        if (_tags.ContainsKey(tag))
            return;
        _tags[tag] = new TagStats();
        _tagOrder.Add(tag);
    }

    // inactive_split: cached blocks inside split segments. PyTorch changes it at one point per operation (alloc_found_block
    // or free_block, by the net change), so recounting before and after an operation gives the same current, peak,
    // allocated and freed values.
    private (long Count, long Bytes)[] InactiveSplit()
    {
        var result = new (long, long)[2];
        foreach (var b in AllBlocks().Where(b => !b.Allocated && b.IsSplit))
        {
            int k = b.Segment.Small ? 0 : 1;
            result[k] = (result[k].Item1 + 1, result[k].Item2 + b.Size);
        }
        return result;
    }

    private void ApplyInactiveSplitChange((long Count, long Bytes)[] before)
    {
        var after = InactiveSplit();
        for (int k = 0; k < 2; k++)
        {
            foreach (var p in Pools(small: k == 0))
            {
                p.InactiveSplit.Change(after[k].Count - before[k].Count);
                p.InactiveSplitBytes.Change(after[k].Bytes - before[k].Bytes);
            }
        }
    }

    private IEnumerable<Stat> AllStats() =>
        new[] { _all, _small, _large }.SelectMany(p => p.Stats)
            .Concat([_oversizeAllocations, _oversizeSegments])
            .Concat(_tags.Values.SelectMany(t => new[] { t.Allocation, t.AllocatedBytes, t.RequestedBytes }));

    // ---------------------------------------------------------------- statistics

    private sealed class Stat
    {
        public long Current, Peak, Allocated, Freed;

        public void Increase(long n)
        {
            Current += n;
            Allocated += n;
            Peak = Math.Max(Peak, Current);
        }

        public void Decrease(long n)
        {
            Current -= n;
            Freed += n;
        }

        public void Change(long delta)
        {
            if (delta > 0) Increase(delta);
            else if (delta < 0) Decrease(-delta);
        }

        public StatValue Value => new(Current, Peak, Allocated, Freed);
    }

    private sealed class PoolStats
    {
        public readonly Stat Allocation = new(), Segment = new(), InactiveSplit = new(), AllocatedBytes = new(),
            ReservedBytes = new(), InactiveSplitBytes = new(), RequestedBytes = new(), RoundedBytes = new();

        public Stat[] Stats => [Allocation, Segment, InactiveSplit, AllocatedBytes, ReservedBytes, InactiveSplitBytes, RequestedBytes, RoundedBytes];

        // No deferred (cross-stream) frees here, so active == allocation and active_bytes == allocated_bytes.
        public PoolStatistics ToStatistics() => new(
            Allocation.Value, Segment.Value, Allocation.Value, InactiveSplit.Value, AllocatedBytes.Value,
            ReservedBytes.Value, AllocatedBytes.Value, InactiveSplitBytes.Value, RequestedBytes.Value, RoundedBytes.Value);
    }

    private sealed class TagStats
    {
        public readonly Stat Allocation = new(), AllocatedBytes = new(), RequestedBytes = new();
    }
}
