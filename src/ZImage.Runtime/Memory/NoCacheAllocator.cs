namespace ZImage.Runtime.Memory;

/// <summary>
/// The baseline policy: one device allocation per request (rounded to 512 B) and one device free per release, nothing
/// cached — what per-tensor <c>Allocate1D</c>/<c>Dispose</c> on ILGPU does. Same statistics and handle API as
/// <see cref="CachingAllocator"/>. Thread-safe.
/// </summary>
public sealed class NoCacheAllocator : BlockAllocatorBase, IBlockAllocator
{
    private const int None = -1;

    private Slot[] _slots = new Slot[64];
    private int _slotCount;
    private int _freeSlot = None;
    private long _nextId = 1;
    private long _allocatedBytes;
    private bool _disposed;

    /// <summary>Creates the allocator over <paramref name="backend"/>.</summary>
    public NoCacheAllocator(IDeviceMemoryBackend backend, bool ownsBackend = false)
        : base(backend, ownsBackend)
    {
    }

    /// <inheritdoc />
    public string Name => "no-cache";

    /// <inheritdoc />
    public long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

    /// <inheritdoc />
    public long ReservedBytes => Volatile.Read(ref _allocatedBytes);

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
    public void FreeBlock(BlockHandle handle)
    {
        using (_gate.EnterScope())
        {
            if (_disposed)
                return;
            int i = Resolve(handle);
            ref Slot s = ref _slots[i];
            long id = s.Id;
            _backend.FreeSegment(s.Segment!);
            bool small = CachingAllocator.IsSmallPool(s.Size);
            _stats.BlockFreed(small, s.Size, s.Requested, s.Size, s.Tag, false);
            _stats.SegmentFreed(small, s.Size, false);
            Volatile.Write(ref _allocatedBytes, _allocatedBytes - s.Size);
            s.Segment = null;
            s.Generation = s.Generation == int.MaxValue ? 1 : s.Generation + 1;
            s.NextFree = _freeSlot;
            _freeSlot = i;
            foreach (var o in _observers.Items)
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
            ref Slot s = ref _slots[Resolve(handle)];
            return new BlockInfo(s.Id, s.Segment!.Address, 0, s.Size, s.Requested, s.Stream, s.Segment, _stats.TagName(s.Tag));
        }
    }

    /// <inheritdoc />
    public override DeviceAllocation Allocate(long bytes, string tag)
    {
        var handle = AllocateBlock(bytes, tag);
        return new BlockAllocation(this, handle, GetBlockInfo(handle));
    }

    /// <summary>Nothing is cached, so there is nothing to release.</summary>
    public void EmptyCache()
    {
    }

    /// <summary>Frees every live block's segment and disposes an owned backend.</summary>
    public void Dispose()
    {
        using (_gate.EnterScope())
        {
            if (_disposed)
                return;
            _disposed = true;
            for (int i = 0; i < _slotCount; i++)
            {
                if (_slots[i].Segment is { } seg)
                {
                    _backend.FreeSegment(seg);
                    _slots[i].Segment = null;
                }
            }
            Volatile.Write(ref _allocatedBytes, 0);
        }
        if (_ownsBackend)
            _backend.Dispose();
    }

    private bool AllocateCore(long bytes, string tag, int stream, out BlockHandle handle, out DeviceOutOfMemoryException? oom)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if ((ulong)bytes > CachingAllocator.MaxAllocationBytes)
            CachingAllocator.ThrowSizeOutOfRange(bytes);
        oom = null;
        long size = Math.Max(CachingAllocator.MinBlockSize, (bytes + CachingAllocator.MinBlockSize - 1) / CachingAllocator.MinBlockSize * CachingAllocator.MinBlockSize);
        IAllocationObserver[] observers;
        using (_gate.EnterScope())
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int tagIndex = _stats.TagIndex(tag);
            observers = _observers.Items;
            if (_backend.TryAllocateSegment(size, out var segment) && segment is not null)
            {
                int i = NewSlot();
                ref Slot s = ref _slots[i];
                s.Segment = segment;
                s.Size = size;
                s.Requested = bytes;
                s.Tag = tagIndex;
                s.Stream = stream;
                s.Id = _nextId++;
                bool small = CachingAllocator.IsSmallPool(size);
                _stats.SegmentAllocated(small, size, false);
                _stats.BlockAllocated(small, size, bytes, size, tagIndex, false);
                Volatile.Write(ref _allocatedBytes, _allocatedBytes + size);
                handle = new BlockHandle(i, s.Generation);
                foreach (var o in observers)
                    o.OnAlloc(s.Id, size, bytes, tag, stream);
                return true;
            }
            _stats.NumOoms++;
            var info = _backend.GetMemoryInfo();
            oom = new DeviceOutOfMemoryException(bytes, _allocatedBytes, _allocatedBytes, info.FreeBytes, info.TotalBytes, tag,
                "Nothing is cached by the no-cache policy; free tensors that are no longer needed.");
            handle = default;
        }
        foreach (var o in observers)
            o.OnOom(bytes, tag, stream);
        return false;
    }

    private int NewSlot()
    {
        if (_freeSlot != None)
        {
            int i = _freeSlot;
            _freeSlot = _slots[i].NextFree;
            return i;
        }
        if (_slotCount == _slots.Length)
            Array.Resize(ref _slots, _slots.Length * 2);
        _slots[_slotCount].Generation = 1;
        return _slotCount++;
    }

    private bool IsLiveNoLock(BlockHandle h) =>
        !_disposed && h.Generation != 0 && (uint)h.Index < (uint)_slotCount && _slots[h.Index].Generation == h.Generation && _slots[h.Index].Segment is not null;

    private int Resolve(BlockHandle h)
    {
        if (!IsLiveNoLock(h))
            throw new ObjectDisposedException(h.ToString(),
                h.Generation == 0 ? "The block handle was never issued by an allocator." : "The device block was already freed (double free or use after free).");
        return h.Index;
    }

    private struct Slot
    {
        public DeviceSegment? Segment;
        public long Size;
        public long Requested;
        public long Id;
        public int Tag;
        public int Stream;
        public int Generation;
        public int NextFree;
    }
}
