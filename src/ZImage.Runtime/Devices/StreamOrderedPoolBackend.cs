using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ZImage.Runtime.Interop;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Devices;

/// <summary>Options for <see cref="StreamOrderedPoolBackend"/>.</summary>
public sealed class StreamOrderedPoolOptions
{
    /// <summary>
    /// <c>CU_MEMPOOL_ATTR_RELEASE_THRESHOLD</c>: bytes the pool keeps cached across synchronizations. The driver's
    /// default 0 unmaps cached memory at every sync; PyTorch and RMM use <see cref="ulong.MaxValue"/> (the default here).
    /// </summary>
    public ulong ReleaseThresholdBytes { get; set; } = ulong.MaxValue;
}

/// <summary>The stream-ordered pool backend cannot be used here; <see cref="Reason"/> says why.</summary>
public sealed class StreamOrderedPoolNotSupportedException : NotSupportedException
{
    /// <summary>Creates the exception with the reason.</summary>
    public StreamOrderedPoolNotSupportedException(string reason)
        : base("The CUDA stream-ordered pool backend is not supported: " + reason)
    {
        Reason = reason;
    }

    /// <summary>Why the backend is unavailable (CPU accelerator, driver too old, device without memory pools).</summary>
    public string Reason { get; }
}

/// <summary>
/// Segments come from the device's default CUDA memory pool through <c>cuMemAllocAsync</c>/<c>cuMemFreeAsync</c>
/// ordered on a stream this backend owns, with the pool's release threshold set from the options; the driver does
/// caching and defragmentation (it can remap physical pages). Segments are wrapped in a custom ILGPU buffer so
/// <see cref="DeviceSegment.GetByteView"/> returns a normal kernel-ready view. Constructible only where the driver has
/// the stream-ordered allocator (CUDA 11.2+) and the device reports memory-pool support. Thread-safe.
/// </summary>
public sealed class StreamOrderedPoolBackend : IDeviceMemoryBackend
{
    private readonly LiveSegments<PoolSegment> _live = new();
    private readonly ComputeDevice _device;
    private readonly CudaDriver _driver;
    private readonly CudaStream _stream;
    private readonly IntPtr _pool;
    private long _allocatedBytes;

    private StreamOrderedPoolBackend(ComputeDevice device, CudaDriver driver, StreamOrderedPoolOptions options)
    {
        _device = device;
        _driver = driver;
        using var binding = device.Accelerator.BindScoped();
        _pool = driver.GetDefaultMemPool(device.CudaDeviceHandle);
        driver.SetMemPoolAttribute(_pool, CudaMemPoolAttribute.ReleaseThreshold, options.ReleaseThresholdBytes);
        _stream = (CudaStream)device.Accelerator.CreateStream();
        ReleaseThresholdBytes = options.ReleaseThresholdBytes;
        Name = $"cuda-pool:{(device.Report.DeviceIndex ?? 0).ToString(CultureInfo.InvariantCulture)} {device.Accelerator.Name}";
    }

    /// <summary>Whether <paramref name="device"/> can host this backend; <paramref name="reason"/> says why not.</summary>
    public static bool IsSupported(ComputeDevice device, out string reason)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (!device.IsCuda || device.Driver is null)
        {
            reason = $"it needs a CUDA accelerator, but the device is the {device.Kind} accelerator ({device.Report.CudaStatus}: {device.Report.CudaReason}).";
            return false;
        }

        if (!device.Driver.HasStreamOrderedAllocator)
        {
            reason = $"the CUDA driver '{device.Driver.LibraryName}' lacks {device.Driver.MissingPoolExports} (CUDA 11.2 or newer is needed).";
            return false;
        }

        if (!device.Report.MemoryPoolsSupported)
        {
            reason = "the device reports CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 0.";
            return false;
        }

        reason = "";
        return true;
    }

    /// <summary>Creates the backend on <paramref name="device"/>.</summary>
    /// <exception cref="StreamOrderedPoolNotSupportedException">The device or driver has no stream-ordered allocator.</exception>
    /// <exception cref="CudaException">A pool call failed.</exception>
    public static StreamOrderedPoolBackend Create(ComputeDevice device, StreamOrderedPoolOptions? options = null)
    {
        if (!IsSupported(device, out string reason))
            throw new StreamOrderedPoolNotSupportedException(reason);
        return new StreamOrderedPoolBackend(device, device.Driver!, options ?? new StreamOrderedPoolOptions());
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public bool HasBackingStore => true;

    /// <summary>The release threshold set on the pool.</summary>
    public ulong ReleaseThresholdBytes { get; }

    /// <summary>Bytes in live segments handed out by this backend.</summary>
    public long AllocatedBytes => Interlocked.Read(ref _allocatedBytes);

    /// <summary>The stream allocations and frees are ordered on; kernels that use the memory should run on it.</summary>
    public AcceleratorStream Stream => _stream;

    /// <summary>
    /// Driver free/total, with the pool's cached-but-unused bytes (reserved − used) counted as free, since the pool
    /// hands them out again without asking the device.
    /// </summary>
    public DeviceMemoryInfo GetMemoryInfo()
    {
        ThrowIfDisposed();
        using var binding = _device.Accelerator.BindScoped();
        var info = _driver.GetMemoryInfo();
        ulong reserved = _driver.GetMemPoolAttribute(_pool, CudaMemPoolAttribute.ReservedMemCurrent);
        ulong used = _driver.GetMemPoolAttribute(_pool, CudaMemPoolAttribute.UsedMemCurrent);
        long cached = reserved > used ? (long)(reserved - used) : 0;
        return new DeviceMemoryInfo(info.TotalBytes, Math.Min(info.TotalBytes, info.FreeBytes + cached));
    }

    /// <summary>Bytes the pool holds from the device (<c>CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT</c>).</summary>
    public long PoolReservedBytes => (long)PoolAttribute(CudaMemPoolAttribute.ReservedMemCurrent);

    /// <summary>Bytes the pool has handed out (<c>CU_MEMPOOL_ATTR_USED_MEM_CURRENT</c>).</summary>
    public long PoolUsedBytes => (long)PoolAttribute(CudaMemPoolAttribute.UsedMemCurrent);

    private ulong PoolAttribute(CudaMemPoolAttribute attribute)
    {
        ThrowIfDisposed();
        using var binding = _device.Accelerator.BindScoped();
        return _driver.GetMemPoolAttribute(_pool, attribute);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is not positive.</exception>
    public bool TryAllocateSegment(long bytes, out DeviceSegment? segment)
    {
        if (bytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "A segment must be at least 1 byte.");
        ThrowIfDisposed();
        segment = null;
        ulong ptr;
        using (_device.Accelerator.BindScoped())
        {
            if (!_driver.TryAllocateAsync(bytes, _stream.StreamPtr, out ptr))
                return false;
        }

        var created = new PoolSegment(this, new CudaPoolMemoryBuffer(_device.Accelerator, ptr, bytes));
        _live.Add(created);
        Interlocked.Add(ref _allocatedBytes, bytes);
        segment = created;
        return true;
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The segment is not from this backend or was already freed.</exception>
    public void FreeSegment(DeviceSegment segment)
    {
        Release(_live.Remove(segment, this, Name));
    }

    private void Release(PoolSegment segment)
    {
        using (_device.Accelerator.BindScoped())
            _driver.FreeAsync(segment.Buffer.DevicePointer, _stream.StreamPtr);
        segment.Release();
        Interlocked.Add(ref _allocatedBytes, -segment.Size);
    }

    /// <summary><c>cuMemPoolTrimTo</c>: returns cached pool memory to the device, keeping at least <paramref name="minBytesToKeep"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minBytesToKeep"/> is negative.</exception>
    public void TrimTo(long minBytesToKeep)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minBytesToKeep);
        ThrowIfDisposed();
        using var binding = _device.Accelerator.BindScoped();
        _driver.SynchronizeStream(_stream.StreamPtr);
        _driver.TrimMemPool(_pool, minBytesToKeep);
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        ThrowIfDisposed();
        using var binding = _device.Accelerator.BindScoped();
        _driver.SynchronizeStream(_stream.StreamPtr);
    }

    /// <summary>Frees live segments, waits for the stream and disposes it. The default pool itself is the device's and stays.</summary>
    public void Dispose()
    {
        if (_live.Close() is not { } live)
            return;
        foreach (var s in live)
            Release(s);
        using (_device.Accelerator.BindScoped())
            _driver.SynchronizeStream(_stream.StreamPtr);
        _stream.Dispose();
    }

    private void ThrowIfDisposed() => _live.ThrowIfClosed(Name);

    private sealed class PoolSegment(StreamOrderedPoolBackend owner, CudaPoolMemoryBuffer buffer)
        : ReleasableSegment(owner, (long)buffer.DevicePointer, buffer.Length, "pool")
    {
        public CudaPoolMemoryBuffer Buffer { get; } = buffer;

        protected override ArrayView<byte> WholeView => Buffer.ByteView;

        protected override void Free() => Buffer.Dispose();
    }
}
