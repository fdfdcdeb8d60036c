using ZImage.Runtime.Memory;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// An allocator decorator (installed below the budget guard through <c>ZImageEngineOptions.AllocatorDecorator</c>)
/// that counts block allocations and fails a chosen one the way the caching allocator would: with a
/// <see cref="DeviceOutOfMemoryException"/> (<see cref="DeviceFaultKind.OutOfMemory"/>) or an
/// <see cref="InjectedDeviceFaultException"/> (<see cref="DeviceFaultKind.Error"/>, a non-OOM device error).
/// Nothing is allocated by a failed call.
/// </summary>
public sealed class FaultInjectingAllocator(IDeviceAllocator inner) : IDeviceAllocator
{
    private readonly object _lock = new();
    private long _allocations, _armedAt, _injected;
    private long? _failAt;
    private DeviceFaultKind _kind;

    /// <summary>Block allocations attempted since creation.</summary>
    public long Allocations { get { lock (_lock) return _allocations; } }

    /// <summary>Tag and size of the last allocation that was failed.</summary>
    public (string Tag, long Bytes) LastInjected { get; private set; }

    /// <summary>Faults injected so far.</summary>
    public long Injected { get { lock (_lock) return _injected; } }

    /// <summary>When set, decides per allocation (its 1-based number since creation) whether and how it fails; used by the soak.</summary>
    public Func<long, DeviceFaultKind?>? Decide { get; set; }

    /// <summary>Called with the allocation's 1-based number before each block allocation (e.g. to cancel a request mid-stage).</summary>
    public Action<long>? OnAllocation { get; set; }

    /// <summary>Fails the <paramref name="position"/>-th block allocation (1-based) from now, once.</summary>
    public void Arm(long position, DeviceFaultKind kind)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(position, 1);
        lock (_lock) { _armedAt = _allocations; _failAt = position; _kind = kind; }
    }

    /// <summary>Stops injecting faults.</summary>
    public void Disarm() { lock (_lock) _failAt = null; }

    public IDeviceMemoryBackend Backend => inner.Backend;

    public DeviceAllocation Allocate(long bytes, string tag)
    {
        DeviceFaultKind? fault;
        long n;
        lock (_lock)
        {
            n = ++_allocations;
            fault = _failAt is { } at && n - _armedAt == at ? _kind : null;
            if (fault is null && Decide is { } decide) fault = decide(n);
            if (fault is not null) { _injected++; LastInjected = (tag, bytes); }
        }
        OnAllocation?.Invoke(n);
        if (fault == DeviceFaultKind.OutOfMemory)
        {
            var info = inner.Backend.GetMemoryInfo();
            throw new DeviceOutOfMemoryException(bytes, 0, 0, info.FreeBytes, info.TotalBytes, tag, $"injected fault at block allocation #{n}");
        }
        if (fault == DeviceFaultKind.Error) throw new InjectedDeviceFaultException(n, bytes);
        return inner.Allocate(bytes, tag);
    }

    public DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged
    {
        long bytes = checked(length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        return new DeviceBuffer<T>(Allocate(bytes, tag), length);
    }
}
