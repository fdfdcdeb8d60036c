using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Compute;

/// <summary>
/// The planning <see cref="IWeightProvider"/>: allocates every requested weight with exactly the size the checkpoint
/// provider would (matrices in <see cref="MatrixDType"/>, vectors in F32, tag <see cref="AllocationTags.Weights"/>)
/// on a simulated device, without any data. <see cref="GatherRows"/> returns zeros. Requesting the same name twice
/// returns the same tensor, as the checkpoint provider does.
/// </summary>
public sealed class PlanningWeights : IWeightProvider, Residency.IStreamableWeights
{
    private readonly IDeviceAllocator _allocator;
    private readonly WeightCache _tensors = new();
    private bool _disposed;

    /// <summary>Creates a provider allocating from <paramref name="allocator"/> (normally over a simulated backend).</summary>
    /// <param name="allocator">Where the weight blocks are allocated.</param>
    /// <param name="matrixDType">The device dtype of matrices (default BF16, as the checkpoint provider).</param>
    /// <param name="quantizedDType">8-bit weights (I8 or F8E4M3) for the matrices <see cref="WeightQuantization.Quantizes"/> selects, as the checkpoint provider; null for none.</param>
    public PlanningWeights(IDeviceAllocator allocator, TensorDType matrixDType = TensorDType.BF16, TensorDType? quantizedDType = null)
    {
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        MatrixDType = WeightCache.ValidateMatrixDType(matrixDType, nameof(matrixDType), "Matrix dtype must be F32, F16 or BF16.");
        QuantizedDType = WeightQuantization.Validate(quantizedDType, nameof(quantizedDType));
    }

    /// <inheritdoc />
    public TensorDType MatrixDType { get; }

    /// <summary>The 8-bit format of the quantised Linear matrices (null: none).</summary>
    public TensorDType? QuantizedDType { get; }

    /// <inheritdoc />
    public TensorDType MatrixDTypeFor(string name, IReadOnlyList<int> shape) => WeightQuantization.DTypeFor(name, shape, MatrixDType, QuantizedDType);

    /// <summary>Elements (parameters) of all weights provided so far.</summary>
    public long ParameterCount => _tensors.ParameterCount;

    /// <summary>Bytes of all weights allocated so far.</summary>
    public long TotalBytes => _tensors.TotalBytes;

    /// <inheritdoc />
    public Tensor Matrix(string name, params int[] shape) => Get(name, MatrixDTypeFor(name, shape), shape);

    /// <inheritdoc />
    public Tensor Vector(string name, params int[] shape) => Get(name, TensorDType.F32, shape);

    /// <inheritdoc />
    public float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "dim must be > 0.");
        return new float[checked(rows.Length * dim)];
    }

    /// <inheritdoc />
    /// <remarks>Planning: nothing is written; the destination's shape is checked as the checkpoint provider would.</remarks>
    public void LoadInto(string name, bool matrix, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        WeightCache.ValidateRequest(name, destination.Shape, _disposed, this);
        foreach (int d in destination.Shape)
            if (d <= 0) throw new WeightShapeException(name, destination.Shape, destination.Shape, "Dimensions must be positive.");
    }

    /// <inheritdoc />
    /// <remarks>Planning: nothing is written; the shape is checked as the checkpoint provider would.</remarks>
    public void ReadInto(string name, bool matrix, TensorDType dtype, int[] shape, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(shape);
        WeightCache.ValidateRequest(name, shape, _disposed, this);
        foreach (int d in shape)
            if (d <= 0) throw new WeightShapeException(name, shape, shape, "Dimensions must be positive.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _tensors.Clear();
    }

    private Tensor Get(string name, TensorDType dtype, int[] shape)
    {
        WeightCache.ValidateRequest(name, shape, _disposed, this);
        if (_tensors.TryGet(name, shape, "It was requested earlier with the other shape.", out var existing))
            return existing;
        long n = 1;
        foreach (int d in shape)
        {
            if (d <= 0) throw new WeightShapeException(name, shape, shape, "Dimensions must be positive.");
            n *= d;
        }
        return _tensors.Add(name, WeightCache.Allocate(_allocator, n, dtype, shape));
    }
}
