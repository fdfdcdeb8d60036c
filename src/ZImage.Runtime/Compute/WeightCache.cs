using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Compute;

/// <summary>
/// The name → tensor cache behind both weight providers, so that a checkpoint run and a planning run hand out and
/// count weights the same way: one tensor per name, the same shape checks, allocations tagged
/// <see cref="AllocationTags.Weights"/>.
/// </summary>
internal sealed class WeightCache
{
    private readonly Dictionary<string, Tensor> _tensors = new(StringComparer.Ordinal);

    /// <summary>Elements (parameters) of all cached weights.</summary>
    public long ParameterCount => _tensors.Values.Sum(t => t.ElementCount);

    /// <summary>Bytes of all cached weights.</summary>
    public long TotalBytes => _tensors.Values.Sum(t => t.ByteCount);

    /// <summary>Throws on a bad request: an empty name, a null shape or a disposed provider.</summary>
    public static void ValidateRequest(string name, int[] shape, bool disposed, object provider)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        ObjectDisposedException.ThrowIf(disposed, provider);
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="dtype"/> is F32, F16 or BF16.</summary>
    public static TensorDType ValidateMatrixDType(TensorDType dtype, string paramName, string message) =>
        dtype is TensorDType.F32 or TensorDType.F16 or TensorDType.BF16
            ? dtype
            : throw new ArgumentOutOfRangeException(paramName, dtype, message);

    /// <summary>The cached tensor of <paramref name="name"/>, which must have been requested with <paramref name="shape"/>.</summary>
    /// <exception cref="WeightShapeException">It was cached with another shape; <paramref name="mismatch"/> is the reason given, if any.</exception>
    public bool TryGet(string name, int[] shape, string? mismatch, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Tensor? tensor)
    {
        if (!_tensors.TryGetValue(name, out tensor))
            return false;
        return tensor.Shape.SequenceEqual(shape) ? true : throw new WeightShapeException(name, shape, tensor.Shape, mismatch);
    }

    /// <summary>Allocates an uncached <paramref name="dtype"/> tensor of <paramref name="elements"/> elements for a weight.</summary>
    public static Tensor Allocate(IDeviceAllocator allocator, long elements, TensorDType dtype, int[] shape) =>
        new(allocator.Allocate(WeightQuantization.IsQuantized(dtype) ? Tensor.StorageBytes(dtype, shape) : elements * Tensor.ElementSize(dtype), AllocationTags.Weights), dtype, shape);

    /// <summary>Caches <paramref name="tensor"/> under <paramref name="name"/>; the cache now owns it.</summary>
    public Tensor Add(string name, Tensor tensor)
    {
        _tensors.Add(name, tensor);
        return tensor;
    }

    /// <summary>Disposes and forgets every cached tensor.</summary>
    public void Clear()
    {
        foreach (var t in _tensors.Values) t.Dispose();
        _tensors.Clear();
    }
}
