using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Budget;

/// <summary>
/// Holds one device to a fixed carve-up: system reserve, base (green), inference (yellow), buffer (gray), free. It fails
/// fast at start when the segments do not fit, answers admission questions (<see cref="TryAdmit"/>), tracks the inference
/// workspace charged by <see cref="BudgetedAllocator"/> and publishes <see cref="MemorySnapshot"/>s. Thread-safe; reading
/// <see cref="Snapshot"/> never touches the device.
/// </summary>
public sealed class BudgetGuard
{
    private readonly object _layoutGate = new();
    private readonly object _publishGate = new();
    private readonly IDeviceMemoryBackend? _backend;
    private long _base;
    private long _inferenceLimit;
    private long _inferenceInUse;
    private long _weightsInUse;
    private long _deviceUsed = -1;
    private int _oomSeen;
    private MemorySnapshot _lastPublished;

    /// <summary>
    /// Starts a guard. Total and system reserve come from <paramref name="options"/> or, when unset, from
    /// <paramref name="detected"/> (total, and reserve = total − free).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException">A value is neither configured nor detectable.</exception>
    /// <exception cref="BudgetLayoutException">The segments do not fit the total.</exception>
    public BudgetGuard(BudgetOptions options, DeviceMemoryInfo? detected = null)
        : this(options, detected, null)
    {
    }

    private BudgetGuard(BudgetOptions options, DeviceMemoryInfo? detected, IDeviceMemoryBackend? backend)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _backend = backend;
        TotalBytes = options.TotalBytes ?? detected?.TotalBytes
            ?? throw new ArgumentException("BudgetOptions.TotalBytes is not set and no device memory info was given to detect it.", nameof(options));
        SystemReserveBytes = options.SystemReserveBytes
            ?? (detected is DeviceMemoryInfo d
                ? Math.Max(0, d.TotalBytes - d.FreeBytes)
                : throw new ArgumentException("BudgetOptions.SystemReserveBytes is not set and no device memory info was given to detect it (total − free).", nameof(options)));
        if (SystemReserveBytes > TotalBytes)
            throw new ArgumentOutOfRangeException(nameof(options), SystemReserveBytes, $"The system reserve must be within 0..{TotalBytes} (the total).");
        BufferBytes = options.BufferBytes;
        _base = options.BaseBytes ?? 0;
        _inferenceLimit = options.InferenceBytes;
        EnsureFits(_base, _inferenceLimit);
        _lastPublished = Snapshot;
    }

    /// <summary>Starts a guard that detects unset values from <paramref name="backend"/> and can <see cref="Sample"/> it later.</summary>
    public static BudgetGuard Start(BudgetOptions options, IDeviceMemoryBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return new BudgetGuard(options, backend.GetMemoryInfo(), backend);
    }

    /// <summary>Raised after a change that alters the snapshot (never for a no-op), synchronously on the thread that made it.</summary>
    public event EventHandler<MemorySnapshotChangedEventArgs>? SnapshotChanged;

    /// <summary>Device total.</summary>
    public long TotalBytes { get; }
    /// <summary>System reserve.</summary>
    public long SystemReserveBytes { get; }
    /// <summary>Buffer segment.</summary>
    public long BufferBytes { get; }
    /// <summary>Resident base: max(set/measured base, weights allocated through a <see cref="BudgetedAllocator"/>).</summary>
    public long BaseBytes => Math.Max(Volatile.Read(ref _base), Volatile.Read(ref _weightsInUse));
    /// <summary>Inference segment.</summary>
    public long InferenceLimitBytes => Volatile.Read(ref _inferenceLimit);
    /// <summary>Inference workspace currently charged.</summary>
    public long InferenceInUseBytes => Volatile.Read(ref _inferenceInUse);
    /// <summary>Weights-tagged bytes allocated through a <see cref="BudgetedAllocator"/>.</summary>
    public long WeightsInUseBytes => Volatile.Read(ref _weightsInUse);

    /// <summary>The current picture. Reads fields only: no device call, no lock, one record allocated.</summary>
    public MemorySnapshot Snapshot
    {
        get
        {
            long total = TotalBytes, reserve = SystemReserveBytes, buffer = BufferBytes;
            long @base = BaseBytes;
            long limit = Volatile.Read(ref _inferenceLimit);
            long inUse = Volatile.Read(ref _inferenceInUse);
            long sampled = Volatile.Read(ref _deviceUsed);
            bool oom = Volatile.Read(ref _oomSeen) != 0;

            long yellowEnd = reserve + @base + limit;
            long bufferEnd = yellowEnd + buffer;
            long usage = Math.Max(reserve + @base + inUse, sampled);
            long bufferInUse = Math.Clamp(usage - yellowEnd, 0, buffer);
            MemoryState state =
                oom || inUse > limit || usage > bufferEnd || yellowEnd > total ? MemoryState.Red
                : usage > yellowEnd || bufferEnd > total ? MemoryState.Gray
                : inUse > 0 ? MemoryState.Yellow
                : MemoryState.Green;
            return new MemorySnapshot(total, reserve, @base, limit, inUse, buffer, Math.Max(0, total - bufferEnd),
                bufferInUse, sampled < 0 ? null : sampled, oom, state);
        }
    }

    /// <summary>Sets the measured base (what is resident after the model loads).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is negative.</exception>
    /// <exception cref="BudgetLayoutException">With this base the segments no longer fit; nothing changes.</exception>
    public void SetBase(long bytes)
    {
        if (bytes < 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "The base must be 0 or more bytes.");
        lock (_layoutGate)
        {
            EnsureFits(bytes, Volatile.Read(ref _inferenceLimit));
            Volatile.Write(ref _base, bytes);
        }

        Publish();
    }

    /// <summary>
    /// Measures the base from device memory info taken after the model loaded: (total − free) − system reserve.
    /// Returns the measured bytes.
    /// </summary>
    /// <exception cref="BudgetLayoutException">With this base the segments no longer fit.</exception>
    public long MeasureBase(DeviceMemoryInfo afterLoad)
    {
        long measured = Math.Max(0, afterLoad.TotalBytes - afterLoad.FreeBytes - SystemReserveBytes);
        SetBase(measured);
        return measured;
    }

    /// <summary>Measures the base from the backend the guard was started with (one device memory query).</summary>
    /// <exception cref="InvalidOperationException">The guard was not started with a backend.</exception>
    public long MeasureBase() => MeasureBase(RequireBackend().GetMemoryInfo());

    /// <summary>Sets the inference segment (the planner supplies it).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is negative.</exception>
    /// <exception cref="BudgetLayoutException">With this segment the layout no longer fits; nothing changes.</exception>
    public void SetInferenceLimit(long bytes)
    {
        if (bytes < 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "The inference segment must be 0 or more bytes.");
        lock (_layoutGate)
        {
            EnsureFits(Math.Max(Volatile.Read(ref _base), Volatile.Read(ref _weightsInUse)), bytes);
            Volatile.Write(ref _inferenceLimit, bytes);
        }

        Publish();
    }

    /// <summary>Whether a workspace of <paramref name="bytes"/> fits the inference segment now, and by how much it is over if not.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is negative.</exception>
    public AdmissionResult TryAdmit(long bytes)
    {
        if (bytes < 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "The workspace must be 0 or more bytes.");
        return AdmissionResult.Evaluate(bytes, Volatile.Read(ref _inferenceLimit), Volatile.Read(ref _inferenceInUse));
    }

    /// <summary>Like <see cref="TryAdmit"/> but throws when the workspace does not fit.</summary>
    /// <exception cref="BudgetExceededException">The workspace would cross the inference segment.</exception>
    public void EnsureAdmitted(long bytes, string tag = "request")
    {
        var result = TryAdmit(bytes);
        if (!result.Admitted)
            throw new BudgetExceededException(bytes, result.InUseBytes, result.LimitBytes, tag);
    }

    /// <summary>
    /// Feeds a device memory sample (e.g. <c>backend.GetMemoryInfo()</c> between denoising steps); usage above the
    /// inference segment then shows as <see cref="MemoryState.Gray"/>/<see cref="MemoryState.Red"/>.
    /// </summary>
    public void ObserveDeviceMemory(DeviceMemoryInfo info)
    {
        if (info.FreeBytes < 0 || info.TotalBytes < info.FreeBytes)
            throw new ArgumentOutOfRangeException(nameof(info), info, "Free bytes must be within 0..total.");
        Volatile.Write(ref _deviceUsed, info.TotalBytes - info.FreeBytes);
        Publish();
    }

    /// <summary>Samples the backend the guard was started with (one device memory query, no synchronization).</summary>
    /// <exception cref="InvalidOperationException">The guard was not started with a backend.</exception>
    public MemorySnapshot Sample()
    {
        ObserveDeviceMemory(RequireBackend().GetMemoryInfo());
        return Snapshot;
    }

    /// <summary>Records a device out-of-memory (the state turns <see cref="MemoryState.Red"/> until <see cref="ResetOutOfMemory"/>).</summary>
    public void RecordOutOfMemory()
    {
        Volatile.Write(ref _oomSeen, 1);
        Publish();
    }

    /// <summary>Clears the out-of-memory flag (after the caller recovered, e.g. freed caches or shrank the request).</summary>
    public void ResetOutOfMemory()
    {
        Volatile.Write(ref _oomSeen, 0);
        Publish();
    }

    /// <summary>Charges <paramref name="bytes"/> of inference workspace if it fits; lock-free, so parallel callers never overshoot.</summary>
    internal bool TryCharge(long bytes, out long inUseSeen, out long limitSeen)
    {
        while (true)
        {
            long inUse = Volatile.Read(ref _inferenceInUse);
            long limit = Volatile.Read(ref _inferenceLimit);
            if (bytes > limit - inUse)
            {
                inUseSeen = inUse;
                limitSeen = limit;
                return false;
            }

            if (Interlocked.CompareExchange(ref _inferenceInUse, inUse + bytes, inUse) == inUse)
            {
                inUseSeen = inUse;
                limitSeen = limit;
                Publish();
                return true;
            }
        }
    }

    internal void Uncharge(long bytes)
    {
        Interlocked.Add(ref _inferenceInUse, -bytes);
        Publish();
    }

    internal void AddWeights(long delta)
    {
        Interlocked.Add(ref _weightsInUse, delta);
        Publish();
    }

    private IDeviceMemoryBackend RequireBackend() =>
        _backend ?? throw new InvalidOperationException("This BudgetGuard was created without a backend; use BudgetGuard.Start(options, backend) or pass DeviceMemoryInfo explicitly.");

    private void EnsureFits(long @base, long inference)
    {
        if (SystemReserveBytes + @base + inference + BufferBytes > TotalBytes)
            throw new BudgetLayoutException(TotalBytes, SystemReserveBytes, @base, inference, BufferBytes);
    }

    private void Publish()
    {
        if (SnapshotChanged is null)
            return;
        lock (_publishGate)
        {
            var current = Snapshot;
            var previous = _lastPublished;
            if (current.Equals(previous))
                return;
            _lastPublished = current;
            SnapshotChanged?.Invoke(this, new MemorySnapshotChangedEventArgs(previous, current));
        }
    }
}
