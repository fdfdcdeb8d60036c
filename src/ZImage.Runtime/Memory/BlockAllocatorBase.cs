using System.Runtime.CompilerServices;

namespace ZImage.Runtime.Memory;

/// <summary>
/// What every <see cref="IBlockAllocator"/> policy shares: the backend it owns or borrows, the lock, the statistics
/// and the observers, and the members that only read or reset them. Policies keep their hot paths (allocate, free)
/// in their own sealed classes so those calls stay direct.
/// </summary>
public abstract class BlockAllocatorBase
{
    /// <summary>Guards the policy's state and <see cref="StatsTracker"/>; free of atomics while one thread drives the allocator.</summary>
    private protected readonly BiasedLock _gate = new();
    /// <summary>Where segments come from.</summary>
    private protected readonly IDeviceMemoryBackend _backend;
    /// <summary>Whether disposing the allocator disposes <see cref="_backend"/>.</summary>
    private protected readonly bool _ownsBackend;
    /// <summary>torch.cuda.memory_stats-compatible counters; read and written under <see cref="_gate"/>.</summary>
    private protected readonly StatsTracker _stats = new();
    /// <summary>Trace recorders and other observers.</summary>
    private protected readonly ObserverList _observers = new();

    private protected BlockAllocatorBase(IDeviceMemoryBackend backend, bool ownsBackend)
    {
        _backend = backend ?? throw new ArgumentNullException(nameof(backend));
        _ownsBackend = ownsBackend;
    }

    /// <summary>The allocator's lock, for diagnostics and tests.</summary>
    internal BiasedLock Gate => _gate;

    /// <summary>The backend segments come from.</summary>
    public IDeviceMemoryBackend Backend => _backend;

    /// <summary>Allocates a typed buffer of <paramref name="length"/> elements.</summary>
    public DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new DeviceBuffer<T>(Allocate(checked(length * Unsafe.SizeOf<T>()), tag), length);
    }

    /// <summary>Allocates at least <paramref name="bytes"/> bytes for <paramref name="tag"/>.</summary>
    public abstract DeviceAllocation Allocate(long bytes, string tag);

    /// <summary>A consistent snapshot of the statistics.</summary>
    public AllocatorStatistics GetStatistics()
    {
        using (_gate.EnterScope())
            return _stats.Snapshot();
    }

    /// <summary>Resets every peak to the current value (per tag too).</summary>
    public void ResetPeakStats()
    {
        using (_gate.EnterScope())
            _stats.ResetPeak();
    }

    /// <summary>Resets the accumulated allocation/free counts.</summary>
    public void ResetAccumulatedStats()
    {
        using (_gate.EnterScope())
            _stats.ResetAccumulated();
    }

    /// <summary>Registers an observer of allocations, frees and OOMs; dispose the result to unsubscribe.</summary>
    public IDisposable Subscribe(IAllocationObserver observer) => _observers.Add(observer);
}
