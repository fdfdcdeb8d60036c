using ILGPU;

namespace ZImage.Runtime.Memory;

/// <summary>
/// Hands out device memory as tagged blocks. The default implementation is <c>CachingAllocator</c>
/// (PyTorch's CUDA caching allocator policy); <c>BudgetGuard</c> wraps one to enforce the inference segment.
/// Thread-safe.
/// </summary>
public interface IDeviceAllocator
{
    /// <summary>Allocates at least <paramref name="bytes"/> bytes for the given tag (see <see cref="AllocationTags"/>).</summary>
    /// <exception cref="DeviceOutOfMemoryException">The device could not satisfy the request after freeing cached blocks.</exception>
    DeviceAllocation Allocate(long bytes, string tag);

    /// <summary>Allocates a typed buffer of <paramref name="length"/> elements.</summary>
    DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged;

    /// <summary>The backend segments come from.</summary>
    IDeviceMemoryBackend Backend { get; }
}

/// <summary>Well-known allocation tags. Every tag other than <see cref="Weights"/> counts as inference workspace.</summary>
public static class AllocationTags
{
    /// <summary>Resident model weights (the green "base" segment).</summary>
    public const string Weights = "weights";
    /// <summary>Qwen3 text-encoder activations.</summary>
    public const string TextEncoder = "text-encoder";
    /// <summary>DiT activations during denoising.</summary>
    public const string Transformer = "transformer";
    /// <summary>VAE decoder activations.</summary>
    public const string Vae = "vae";
    /// <summary>Latents, noise and scheduler state that live across steps.</summary>
    public const string Latents = "latents";

    /// <summary>Whether allocations with this tag are per-request workspace (yellow) rather than resident weights.</summary>
    public static bool IsInference(string tag) => !string.Equals(tag, Weights, StringComparison.Ordinal);
}

/// <summary>
/// A block handed out by an <see cref="IDeviceAllocator"/>: a sub-view of one segment. Dispose returns it to the pool;
/// a second dispose, or any view taken after dispose, throws <see cref="ObjectDisposedException"/> with the block id.
/// </summary>
public abstract class DeviceAllocation : IDisposable
{
    /// <summary>Monotonic id of this allocation within its allocator.</summary>
    public abstract long Id { get; }
    /// <summary>The tag it was allocated with.</summary>
    public abstract string Tag { get; }
    /// <summary>The bytes the caller asked for.</summary>
    public abstract long RequestedBytes { get; }
    /// <summary>The block size actually handed out (rounded, plus any unsplit remainder), as PyTorch counts "allocated".</summary>
    public abstract long Size { get; }
    /// <summary>The segment holding the block.</summary>
    public abstract DeviceSegment Segment { get; }
    /// <summary>Byte offset of the block within its segment (a multiple of 512).</summary>
    public abstract long Offset { get; }
    /// <summary>Whether the block was returned to the pool.</summary>
    public abstract bool IsDisposed { get; }

    /// <summary>A typed view of the first <paramref name="length"/> elements of the block (default: all requested bytes).</summary>
    public ArrayView<T> GetView<T>(long length = -1) where T : unmanaged
    {
        ThrowIfDisposed();
        long elem = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        long n = length < 0 ? RequestedBytes / elem : length;
        if (n * elem > Size)
            throw new ArgumentOutOfRangeException(nameof(length), n, $"A view of {n} x {elem} B exceeds the {Size} B block.");
        return Segment.GetByteView(Offset, n * elem).Cast<T>();
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> naming the block if it was freed.</summary>
    protected void ThrowIfDisposed()
    {
        if (IsDisposed)
            throw new ObjectDisposedException($"DeviceAllocation#{Id}({Tag})", "The device block was used after it was freed.");
    }

    /// <inheritdoc />
    public abstract void Dispose();
}

/// <summary>A typed device buffer: an allocation viewed as <typeparamref name="T"/> elements.</summary>
public sealed class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    /// <summary>Wraps an allocation that holds at least <paramref name="length"/> elements.</summary>
    public DeviceBuffer(DeviceAllocation allocation, long length)
    {
        Allocation = allocation;
        Length = length;
    }

    /// <summary>The underlying block.</summary>
    public DeviceAllocation Allocation { get; }
    /// <summary>Element count.</summary>
    public long Length { get; }
    /// <summary>The kernel-ready view (throws after dispose or on a simulated device).</summary>
    public ArrayView<T> View => Allocation.GetView<T>(Length);
    /// <inheritdoc />
    public void Dispose() => Allocation.Dispose();
}
