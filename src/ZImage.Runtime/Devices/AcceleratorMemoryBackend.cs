using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Devices;

/// <summary>Options for <see cref="AcceleratorMemoryBackend"/>.</summary>
public sealed class AcceleratorMemoryBackendOptions
{
    /// <summary>
    /// Caps the bytes this backend will hold; a segment that would cross it is refused as out of memory (so OOM paths
    /// can be tested on the CPU accelerator). <see langword="null"/>: no cap beyond the device's own.
    /// </summary>
    public long? CapacityBytes { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when <see cref="CapacityBytes"/> is not positive.</summary>
    public void Validate()
    {
        if (CapacityBytes is <= 0)
            throw new ArgumentOutOfRangeException(nameof(CapacityBytes), CapacityBytes, "The capacity must be more than 0 bytes (or null for none).");
    }
}

/// <summary>
/// Segments are ILGPU buffers from <c>accelerator.Allocate1D&lt;byte&gt;</c>: <c>cuMemAlloc_v2</c> on a GPU, host memory
/// on the CPU accelerator, so views taken from a segment are real, kernel-ready memory. Memory info: on CUDA the
/// driver's free/total (capped by <see cref="AcceleratorMemoryBackendOptions.CapacityBytes"/> if set); on the CPU the
/// capacity (configured, else the device's) minus what this backend holds. Thread-safe.
/// </summary>
public sealed class AcceleratorMemoryBackend : IDeviceMemoryBackend
{
    private readonly LiveSegments<Segment> _live = new();
    private readonly ComputeDevice? _device;
    private readonly long? _capacity;
    private long _allocatedBytes;

    /// <summary>Creates a backend on a device chosen by <see cref="DeviceSelector"/>.</summary>
    public AcceleratorMemoryBackend(ComputeDevice device, AcceleratorMemoryBackendOptions? options = null)
        : this(device?.Accelerator ?? throw new ArgumentNullException(nameof(device)), options, device)
    {
    }

    /// <summary>Creates a backend on any ILGPU accelerator (on CUDA, memory info then comes from ILGPU's <c>CudaAPI</c>).</summary>
    public AcceleratorMemoryBackend(Accelerator accelerator, AcceleratorMemoryBackendOptions? options = null)
        : this(accelerator ?? throw new ArgumentNullException(nameof(accelerator)), options, null)
    {
    }

    private AcceleratorMemoryBackend(Accelerator accelerator, AcceleratorMemoryBackendOptions? options, ComputeDevice? device)
    {
        options?.Validate();
        Accelerator = accelerator;
        _device = device;
        _capacity = options?.CapacityBytes;
        bool cuda = accelerator.AcceleratorType == AcceleratorType.Cuda;
        string cap = _capacity is long c ? ", cap " + ByteSize.Format(c) : "";
        Name = cuda
            ? $"cuda:{(device?.Report.DeviceIndex ?? 0).ToString(CultureInfo.InvariantCulture)} {accelerator.Name}{cap}"
            : $"cpu({accelerator.Name}{cap})";
    }

    /// <summary>The accelerator segments are allocated on.</summary>
    public Accelerator Accelerator { get; }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public bool HasBackingStore => true;

    /// <summary>Bytes held in live segments.</summary>
    public long AllocatedBytes => Interlocked.Read(ref _allocatedBytes);

    /// <summary>Live segments.</summary>
    public int SegmentCount => _live.Count;

    /// <inheritdoc />
    public DeviceMemoryInfo GetMemoryInfo()
    {
        ThrowIfDisposed();
        long held = AllocatedBytes;
        if (Accelerator.AcceleratorType == AcceleratorType.Cuda)
        {
            var info = _device?.GetMemoryInfo() ?? CudaInfo();
            if (_capacity is not long cap)
                return info;
            return new DeviceMemoryInfo(Math.Min(cap, info.TotalBytes), Math.Clamp(Math.Min(info.FreeBytes, cap - held), 0, long.MaxValue));
        }

        long total = _capacity ?? _device?.Report.TotalBytes ?? Accelerator.MemorySize;
        return new DeviceMemoryInfo(total, Math.Max(0, total - held));
    }

    private DeviceMemoryInfo CudaInfo()
    {
        using var binding = Accelerator.BindScoped();
        ILGPU.Runtime.Cuda.CudaAPI.CurrentAPI.GetMemoryInfo(out long free, out long total);
        return new DeviceMemoryInfo(total, free);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is not positive.</exception>
    public bool TryAllocateSegment(long bytes, out DeviceSegment? segment)
    {
        if (bytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "A segment must be at least 1 byte.");
        ThrowIfDisposed();
        segment = null;

        // Reserve capacity first so concurrent callers cannot both pass the cap check.
        if (_capacity is long cap)
        {
            long now;
            do
            {
                now = Interlocked.Read(ref _allocatedBytes);
                if (now + bytes > cap)
                    return false;
            }
            while (Interlocked.CompareExchange(ref _allocatedBytes, now + bytes, now) != now);
        }
        else
        {
            Interlocked.Add(ref _allocatedBytes, bytes);
        }

        MemoryBuffer1D<byte, Stride1D.Dense> buffer;
        try
        {
            buffer = Accelerator.Allocate1D<byte>(bytes);
        }
        catch (Exception ex) when (IsOutOfMemory(ex))
        {
            Interlocked.Add(ref _allocatedBytes, -bytes);
            return false;
        }
        catch
        {
            Interlocked.Add(ref _allocatedBytes, -bytes);
            throw;
        }

        var created = new Segment(this, buffer);
        if (!_live.TryAdd(created))
        {
            buffer.Dispose();
            Interlocked.Add(ref _allocatedBytes, -bytes);
            throw new ObjectDisposedException(Name);
        }

        segment = created;
        return true;
    }

    private static bool IsOutOfMemory(Exception ex) =>
        ex is OutOfMemoryException
        // ILGPU's CudaException exposes the CUresult only as text (its Error property and message).
        || (ex is ILGPU.Runtime.Cuda.CudaException cuda
            && ((cuda.Error?.Contains("OUT_OF_MEMORY", StringComparison.OrdinalIgnoreCase) ?? false)
                || cuda.Message.Contains("OUT_OF_MEMORY", StringComparison.OrdinalIgnoreCase)
                || cuda.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)));

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The segment is not from this backend or was already freed.</exception>
    public void FreeSegment(DeviceSegment segment)
    {
        var own = _live.Remove(segment, this, Name);
        own.Release();
        Interlocked.Add(ref _allocatedBytes, -own.Size);
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        ThrowIfDisposed();
        Accelerator.Synchronize();
    }

    /// <summary>Frees every live segment. The accelerator itself belongs to its <see cref="ComputeDevice"/> and stays.</summary>
    public void Dispose()
    {
        if (_live.Close() is not { } live)
            return;
        foreach (var s in live)
        {
            s.Release();
            Interlocked.Add(ref _allocatedBytes, -s.Size);
        }
    }

    private void ThrowIfDisposed() => _live.ThrowIfClosed(Name);

    private sealed class Segment(AcceleratorMemoryBackend owner, MemoryBuffer1D<byte, Stride1D.Dense> buffer)
        : ReleasableSegment(owner, buffer.NativePtr.ToInt64(), buffer.Length, "device")
    {
        protected override ArrayView<byte> WholeView => buffer.View;

        protected override void Free() => buffer.Dispose();
    }
}
