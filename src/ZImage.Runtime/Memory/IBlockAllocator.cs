namespace ZImage.Runtime.Memory;

/// <summary>
/// A generation-checked reference to an allocated block of an <see cref="IBlockAllocator"/>: the allocation-free
/// hot-path API. A handle goes stale when its block is freed; using a stale handle throws <see cref="ObjectDisposedException"/>.
/// <c>default</c> is never valid.
/// </summary>
public readonly record struct BlockHandle
{
    internal BlockHandle(int index, int generation)
    {
        Index = index;
        Generation = generation;
    }

    /// <summary>The allocator's internal node index.</summary>
    public int Index { get; }

    /// <summary>The node generation this handle was issued for (never 0 for a real handle).</summary>
    public int Generation { get; }

    /// <summary>Whether this handle was issued by an allocator (it may still be stale).</summary>
    public bool IsAllocated => Generation != 0;

    /// <inheritdoc />
    public override string ToString() => $"BlockHandle({Index}, gen {Generation})";
}

/// <summary>What an allocated block is.</summary>
/// <param name="Id">Monotonic allocation id within its allocator (the id in traces).</param>
/// <param name="Address">Device address of the block (segment address + offset).</param>
/// <param name="Offset">Offset within the segment.</param>
/// <param name="Size">Block size as counted in allocated bytes.</param>
/// <param name="RequestedBytes">The bytes the caller asked for.</param>
/// <param name="Stream">The stream the block belongs to.</param>
/// <param name="Segment">The segment holding it.</param>
/// <param name="Tag">The allocation tag.</param>
public readonly record struct BlockInfo(long Id, long Address, long Offset, long Size, long RequestedBytes, int Stream, DeviceSegment Segment, string Tag);

/// <summary>Observes an allocator; used by <see cref="AllocationTraceRecorder"/>. Callbacks run under the allocator's lock (keep them short) except <see cref="OnOom"/>.</summary>
public interface IAllocationObserver
{
    /// <summary>A block was handed out.</summary>
    /// <param name="id">Its allocation id.</param>
    /// <param name="size">Its block size (allocated bytes).</param>
    /// <param name="requestedBytes">The bytes asked for.</param>
    /// <param name="tag">Its tag.</param>
    /// <param name="stream">Its stream.</param>
    void OnAlloc(long id, long size, long requestedBytes, string tag, int stream);

    /// <summary>The block with this allocation id was freed.</summary>
    void OnFree(long id);

    /// <summary>A request failed after the whole retry chain (called outside the lock, before the exception is thrown).</summary>
    void OnOom(long requestedBytes, string tag, int stream);
}

/// <summary>
/// The policy interface shared by <see cref="CachingAllocator"/> and <see cref="NoCacheAllocator"/>: a struct-handle API that
/// allocates nothing in steady state, statistics, and observers. Thread-safe.
/// </summary>
public interface IBlockAllocator : IDeviceAllocator, IDisposable
{
    /// <summary>A short policy name, e.g. <c>caching(max_split_size_mb:128)</c>.</summary>
    string Name { get; }

    /// <summary>Allocates a block of at least <paramref name="bytes"/> bytes.</summary>
    /// <exception cref="DeviceOutOfMemoryException">The request failed after the whole retry chain.</exception>
    BlockHandle AllocateBlock(long bytes, string tag, int stream = 0);

    /// <summary>Like <see cref="AllocateBlock"/> but returns false on out-of-memory (still counted in <c>num_ooms</c>). Other device errors throw.</summary>
    bool TryAllocateBlock(long bytes, string tag, out BlockHandle handle, int stream = 0);

    /// <summary>Returns a block to the pool.</summary>
    /// <exception cref="ObjectDisposedException">The handle is stale (double free) or was never issued.</exception>
    void FreeBlock(BlockHandle handle);

    /// <summary>Whether the handle refers to a live block.</summary>
    bool IsLive(BlockHandle handle);

    /// <summary>Describes a live block.</summary>
    /// <exception cref="ObjectDisposedException">The handle is stale.</exception>
    BlockInfo GetBlockInfo(BlockHandle handle);

    /// <summary>Current allocated bytes (cheap, lock-free read for UIs).</summary>
    long AllocatedBytes { get; }

    /// <summary>Current reserved bytes (cheap, lock-free read for UIs).</summary>
    long ReservedBytes { get; }

    /// <summary>An immutable snapshot of all statistics.</summary>
    AllocatorStatistics GetStatistics();

    /// <summary>Resets every peak (pool, oversize and per-tag) to the current value.</summary>
    void ResetPeakStats();

    /// <summary>Resets the accumulated totals (allocated/freed sub-keys and the num_* counters).</summary>
    void ResetAccumulatedStats();

    /// <summary>Releases every cached, unsplit segment to the device (PyTorch's <c>empty_cache</c>).</summary>
    void EmptyCache();

    /// <summary>Attaches an observer; dispose the result to detach.</summary>
    IDisposable Subscribe(IAllocationObserver observer);
}

/// <summary>The <see cref="DeviceAllocation"/> handed out by the class API of an <see cref="IBlockAllocator"/>.</summary>
internal sealed class BlockAllocation : DeviceAllocation
{
    private readonly IBlockAllocator _owner;
    private readonly BlockHandle _handle;
    private readonly BlockInfo _info;
    private int _disposed;

    public BlockAllocation(IBlockAllocator owner, BlockHandle handle, BlockInfo info)
    {
        _owner = owner;
        _handle = handle;
        _info = info;
    }

    public BlockHandle Handle => _handle;
    public override long Id => _info.Id;
    public override string Tag => _info.Tag;
    public override long RequestedBytes => _info.RequestedBytes;
    public override long Size => _info.Size;
    public override DeviceSegment Segment => _info.Segment;
    public override long Offset => _info.Offset;
    public override bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            throw new ObjectDisposedException($"DeviceAllocation#{Id}({Tag})", "The device block was already freed (double free).");
        _owner.FreeBlock(_handle);
    }

    public override string ToString() => $"DeviceAllocation#{Id}({Tag}, {ByteSize.Format(Size)} at 0x{_info.Address:X})";
}

/// <summary>Observer list with copy-on-write arrays so that notifying allocates nothing.</summary>
internal sealed class ObserverList
{
    private IAllocationObserver[] _items = [];

    public IAllocationObserver[] Items => Volatile.Read(ref _items);

    public IDisposable Add(IAllocationObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        lock (this)
            _items = [.. _items, observer];
        return new Subscription(this, observer);
    }

    private void Remove(IAllocationObserver observer)
    {
        lock (this)
        {
            int i = Array.IndexOf(_items, observer);
            if (i >= 0)
                _items = [.. _items[..i], .. _items[(i + 1)..]];
        }
    }

    private sealed class Subscription(ObserverList owner, IAllocationObserver observer) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
                owner.Remove(observer);
        }
    }
}
