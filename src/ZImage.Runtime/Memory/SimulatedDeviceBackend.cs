using ILGPU;

namespace ZImage.Runtime.Memory;

/// <summary>How an injected device fault shows itself.</summary>
public enum DeviceFaultKind
{
    /// <summary>The segment allocation reports out-of-memory (<see cref="IDeviceMemoryBackend.TryAllocateSegment"/> returns false).</summary>
    OutOfMemory,

    /// <summary>The segment allocation throws <see cref="InjectedDeviceFaultException"/> (a non-OOM driver error).</summary>
    Error,
}

/// <summary>
/// Fault injection for <see cref="SimulatedDeviceBackend"/>: fail the Nth segment allocation attempt, and/or fail each
/// attempt with a probability drawn from a seeded generator (deterministic for a given seed and call sequence).
/// </summary>
public sealed record DeviceFaultInjection
{
    /// <summary>1-based index of the segment allocation attempt (counted from when this injection is installed) that fails; null for none.</summary>
    public int? FailNthAllocation { get; init; }

    /// <summary>Probability in [0, 1] that any attempt fails; 0 disables random faults.</summary>
    public double FailureProbability { get; init; }

    /// <summary>Seed of the generator behind <see cref="FailureProbability"/>.</summary>
    public int Seed { get; init; }

    /// <summary>Whether faults look like out-of-memory or throw a typed non-OOM error.</summary>
    public DeviceFaultKind Kind { get; init; } = DeviceFaultKind.OutOfMemory;

    internal void Validate()
    {
        if (FailNthAllocation is < 1)
            throw new ArgumentOutOfRangeException(nameof(FailNthAllocation), FailNthAllocation, "FailNthAllocation must be >= 1 (1 = the next attempt) or null.");
        if (!(FailureProbability >= 0 && FailureProbability <= 1))
            throw new ArgumentOutOfRangeException(nameof(FailureProbability), FailureProbability, "FailureProbability must be in [0, 1].");
        if (!Enum.IsDefined(Kind))
            throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Kind must be OutOfMemory or Error.");
    }
}

/// <summary>Options of a <see cref="SimulatedDeviceBackend"/>.</summary>
public sealed record SimulatedDeviceOptions
{
    /// <summary>Device capacity in bytes; <c>cudaMalloc(n)</c> succeeds only while reserved + n &lt;= this. Default 24 GiB.</summary>
    public long CapacityBytes { get; init; } = 24 * ByteSize.GiB;

    /// <summary>Address of the first segment; later segments follow at strictly increasing addresses.</summary>
    public long BaseAddress { get; init; } = 0x7F00_0000_0000;

    /// <summary>Faults to inject from the start; null for none (see <see cref="SimulatedDeviceBackend.InjectFaults"/>).</summary>
    public DeviceFaultInjection? Faults { get; init; }

    /// <summary>Display name; default <c>simulated(&lt;capacity&gt;)</c>.</summary>
    public string? Name { get; init; }
}

/// <summary>An injected non-OOM device error from <see cref="SimulatedDeviceBackend"/> (the analogue of a failed CUDA call).</summary>
public sealed class InjectedDeviceFaultException : Exception
{
    /// <summary>Creates the exception.</summary>
    public InjectedDeviceFaultException(long attempt, long requestedBytes)
        : base($"Injected device fault on segment allocation attempt #{attempt} ({ByteSize.Format(requestedBytes)}).")
    {
        Attempt = attempt;
        RequestedBytes = requestedBytes;
    }

    /// <summary>The 1-based attempt number (since the backend was created) that failed.</summary>
    public long Attempt { get; }

    /// <summary>The segment size that was asked for.</summary>
    public long RequestedBytes { get; }
}

/// <summary>
/// A device with capacity but no memory: a bump allocator of addresses, used for planning and trace replay
/// (like RMM's <c>simulated_memory_resource</c>). Segment addresses strictly increase in allocation order and are
/// never reused. Thread-safe.
/// </summary>
public sealed class SimulatedDeviceBackend : IDeviceMemoryBackend
{
    /// <summary>A capacity that never limits a replay (1 EiB).</summary>
    public const long Unlimited = 1L << 60;

    private readonly Lock _lock = new();
    private readonly long _capacity;
    private long _nextAddress;
    private long _reserved;
    private long _peakReserved;
    private long _liveSegments;
    private long _attempts;
    private long _allocs;
    private long _frees;
    private long _failed;
    private long _injected;
    private DeviceFaultInjection? _faults;
    private long _faultAttempts;
    private Random? _faultRandom;
    private bool _disposed;

    /// <summary>Creates a simulated device of <paramref name="capacityBytes"/> bytes.</summary>
    public SimulatedDeviceBackend(long capacityBytes)
        : this(new SimulatedDeviceOptions { CapacityBytes = capacityBytes })
    {
    }

    /// <summary>Creates a simulated device from options.</summary>
    public SimulatedDeviceBackend(SimulatedDeviceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.CapacityBytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.CapacityBytes, $"CapacityBytes must be in [1, {Unlimited}].");
        if (options.BaseAddress < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.BaseAddress, "BaseAddress must be >= 0.");
        _capacity = Math.Min(options.CapacityBytes, Unlimited);
        _nextAddress = options.BaseAddress;
        Name = options.Name ?? $"simulated({(_capacity >= Unlimited ? "unlimited" : ByteSize.Format(_capacity))})";
        InjectFaults(options.Faults);
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public bool HasBackingStore => false;

    /// <summary>Device capacity in bytes.</summary>
    public long CapacityBytes => _capacity;

    /// <summary>Bytes currently held by live segments.</summary>
    public long ReservedBytes { get { lock (_lock) return _reserved; } }

    /// <summary>Highest <see cref="ReservedBytes"/> seen.</summary>
    public long PeakReservedBytes { get { lock (_lock) return _peakReserved; } }

    /// <summary>Number of live segments.</summary>
    public long LiveSegments { get { lock (_lock) return _liveSegments; } }

    /// <summary>Segment allocation attempts (successful or not).</summary>
    public long AllocationAttempts { get { lock (_lock) return _attempts; } }

    /// <summary>Successful segment allocations (<c>cudaMalloc</c> calls that returned memory).</summary>
    public long DeviceAllocations { get { lock (_lock) return _allocs; } }

    /// <summary>Segment frees (<c>cudaFree</c> calls).</summary>
    public long DeviceFrees { get { lock (_lock) return _frees; } }

    /// <summary>Attempts that failed, for lack of capacity or by injection.</summary>
    public long FailedAllocations { get { lock (_lock) return _failed; } }

    /// <summary>Attempts failed by fault injection (either kind).</summary>
    public long InjectedFaults { get { lock (_lock) return _injected; } }

    /// <summary>Installs (or with null removes) fault injection; the Nth-attempt counter restarts at this call.</summary>
    public void InjectFaults(DeviceFaultInjection? faults)
    {
        faults?.Validate();
        lock (_lock)
        {
            _faults = faults;
            _faultAttempts = 0;
            _faultRandom = faults is { FailureProbability: > 0 } ? new Random(faults.Seed) : null;
        }
    }

    /// <inheritdoc />
    public DeviceMemoryInfo GetMemoryInfo()
    {
        lock (_lock)
            return new DeviceMemoryInfo(_capacity, _capacity - _reserved);
    }

    /// <inheritdoc />
    public bool TryAllocateSegment(long bytes, out DeviceSegment? segment)
    {
        if (bytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "A segment must be at least 1 byte.");
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _attempts++;
            segment = null;
            if (_faults is { } f)
            {
                _faultAttempts++;
                bool fail = f.FailNthAllocation == _faultAttempts;
                if (_faultRandom is not null && _faultRandom.NextDouble() < f.FailureProbability)
                    fail = true;
                if (fail)
                {
                    _failed++;
                    _injected++;
                    if (f.Kind == DeviceFaultKind.Error)
                        throw new InjectedDeviceFaultException(_attempts, bytes);
                    return false;
                }
            }
            if (bytes > _capacity - _reserved)
            {
                _failed++;
                return false;
            }
            var seg = new SimulatedSegment(this, _nextAddress, bytes);
            _nextAddress += bytes;
            _reserved += bytes;
            _peakReserved = Math.Max(_peakReserved, _reserved);
            _liveSegments++;
            _allocs++;
            segment = seg;
            return true;
        }
    }

    /// <inheritdoc />
    public void FreeSegment(DeviceSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (segment is not SimulatedSegment s || !ReferenceEquals(s.Owner, this))
            throw new ArgumentException($"Segment at 0x{segment.Address:X} does not belong to {Name}.", nameof(segment));
        lock (_lock)
        {
            if (s.IsFreed)
                throw new InvalidOperationException($"Segment at 0x{s.Address:X} ({ByteSize.Format(s.Size)}) was already freed.");
            s.IsFreed = true;
            _reserved -= s.Size;
            _liveSegments--;
            _frees++;
        }
    }

    /// <inheritdoc />
    public void Synchronize()
    {
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
            _disposed = true;
    }

    private sealed class SimulatedSegment(SimulatedDeviceBackend owner, long address, long size) : DeviceSegment(address, size)
    {
        public SimulatedDeviceBackend Owner { get; } = owner;

        public bool IsFreed { get; set; }

        public override ArrayView<byte> GetByteView(long offset, long length) =>
            throw new NotSupportedException(
                $"The segment at 0x{Address:X} lives on the simulated device '{Owner.Name}', which has no backing store: " +
                "it only counts bytes (planning / trace replay). Use an ILGPU-backed backend to get kernel views.");
    }
}
