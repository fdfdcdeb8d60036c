using ZImage.Runtime.Memory;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// A device backend decorator that counts segment allocation attempts and fails chosen ones, like a real driver would:
/// <see cref="DeviceFaultKind.OutOfMemory"/> returns false (the allocator frees its cache and retries; with
/// <see cref="Sticky"/> every later attempt fails too, so the retry fails and the request sees a
/// <see cref="DeviceOutOfMemoryException"/>), <see cref="DeviceFaultKind.Error"/> throws
/// <see cref="InjectedDeviceFaultException"/> (a non-OOM driver error, which is not retried).
/// </summary>
public sealed class FaultInjectingBackend(IDeviceMemoryBackend inner) : IDeviceMemoryBackend
{
    private readonly object _lock = new();
    private long _attempts, _armedAt = -1, _injected;
    private long? _failAt;
    private bool _sticky;
    private DeviceFaultKind _kind;
    private long _liveSegments;

    /// <summary>Segment allocation attempts since the backend was created.</summary>
    public long Attempts { get { lock (_lock) return _attempts; } }

    /// <summary>Segments handed out and not yet returned to the device.</summary>
    public long LiveSegments => Interlocked.Read(ref _liveSegments);

    /// <summary>Called with the 1-based attempt number before each segment allocation attempt (e.g. to cancel a request mid-stage).</summary>
    public Action<long>? OnAttempt { get; set; }

    /// <summary>Faults injected so far.</summary>
    public long Injected { get { lock (_lock) return _injected; } }

    /// <summary>Whether an OOM fault keeps failing every attempt after the first one.</summary>
    public bool Sticky { get { lock (_lock) return _sticky; } }

    /// <summary>Fails the <paramref name="position"/>-th attempt (1-based) from now.</summary>
    public void Arm(long position, DeviceFaultKind kind, bool sticky = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(position, 1);
        lock (_lock)
        {
            _armedAt = _attempts;
            _failAt = position;
            _kind = kind;
            _sticky = sticky;
        }
    }

    /// <summary>Stops injecting faults.</summary>
    public void Disarm() { lock (_lock) { _failAt = null; _sticky = false; } }

    public string Name => inner.Name;
    public bool HasBackingStore => inner.HasBackingStore;
    public DeviceMemoryInfo GetMemoryInfo() => inner.GetMemoryInfo();

    public bool TryAllocateSegment(long bytes, out DeviceSegment? segment)
    {
        long attempt;
        DeviceFaultKind kind;
        bool fail;
        lock (_lock)
        {
            attempt = ++_attempts;
            long relative = attempt - _armedAt;
            fail = _failAt is { } n && (relative == n || (_sticky && relative > n));
            kind = _kind;
            if (fail) _injected++;
        }
        OnAttempt?.Invoke(attempt);
        if (fail)
        {
            if (kind == DeviceFaultKind.Error) throw new InjectedDeviceFaultException(attempt, bytes);
            segment = null;
            return false;
        }
        if (!inner.TryAllocateSegment(bytes, out segment)) return false;
        Interlocked.Increment(ref _liveSegments);
        return true;
    }

    public void FreeSegment(DeviceSegment segment)
    {
        inner.FreeSegment(segment);
        Interlocked.Decrement(ref _liveSegments);
    }

    public void Synchronize() => inner.Synchronize();
    public void Dispose() => inner.Dispose();
}
