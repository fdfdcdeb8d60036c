using ILGPU;

namespace ZImage.Runtime.Memory;

/// <summary>
/// Where the caching allocator gets its segments from: the analogue of <c>cudaMalloc</c>/<c>cudaFree</c>.
/// Implementations: an ILGPU accelerator (real memory, CUDA or CPU), a simulated device (capacity only, for
/// planning and trace replay) and a CUDA stream-ordered pool.
/// </summary>
public interface IDeviceMemoryBackend : IDisposable
{
    /// <summary>A short human-readable name, e.g. <c>"simulated(24 GiB)"</c> or <c>"cuda:0 NVIDIA H100"</c>.</summary>
    string Name { get; }

    /// <summary>Whether segments have real storage, so that <see cref="DeviceSegment.GetByteView"/> works.</summary>
    bool HasBackingStore { get; }

    /// <summary>Total and free device bytes as the backend sees them now. Never synchronizes the device.</summary>
    DeviceMemoryInfo GetMemoryInfo();

    /// <summary>
    /// Tries to allocate one segment of exactly <paramref name="bytes"/> bytes. Returns <see langword="false"/>
    /// when the device is out of memory (the allocator then runs its free-cache-and-retry path); throws only for
    /// errors other than out-of-memory.
    /// </summary>
    bool TryAllocateSegment(long bytes, out DeviceSegment? segment);

    /// <summary>Returns a segment to the device. The segment must come from this backend and be unused.</summary>
    void FreeSegment(DeviceSegment segment);

    /// <summary>Waits until all queued device work is done (no-op where nothing runs asynchronously).</summary>
    void Synchronize();
}

/// <summary>Device memory as reported by the backend or driver.</summary>
/// <param name="TotalBytes">Total device memory.</param>
/// <param name="FreeBytes">Memory the device could still hand out to <c>cudaMalloc</c>.</param>
public readonly record struct DeviceMemoryInfo(long TotalBytes, long FreeBytes);

/// <summary>
/// One contiguous device allocation made by an <see cref="IDeviceMemoryBackend"/> (a PyTorch "segment").
/// The caching allocator splits segments into blocks.
/// </summary>
public abstract class DeviceSegment
{
    /// <summary>Creates a segment description.</summary>
    /// <param name="address">A device address (real or simulated). Simulated addresses increase in allocation order and are never reused.</param>
    /// <param name="size">The segment size in bytes.</param>
    protected DeviceSegment(long address, long size)
    {
        Address = address;
        Size = size;
    }

    /// <summary>The segment's device address (or simulated address).</summary>
    public long Address { get; }

    /// <summary>The segment size in bytes.</summary>
    public long Size { get; }

    /// <summary>
    /// A byte view over <paramref name="offset"/>..<paramref name="offset"/>+<paramref name="length"/> of the segment,
    /// usable as an ILGPU kernel argument. Throws <see cref="NotSupportedException"/> on backends without storage.
    /// </summary>
    public abstract ArrayView<byte> GetByteView(long offset, long length);
}
