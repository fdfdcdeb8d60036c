using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Pipeline.Engine;

/// <summary>
/// Seeded random weights with the shapes the models ask for, so the pipeline runs without a checkpoint (the demo model).
/// Each tensor is generated from <c>seed</c> and the FNV-1a hash of its name (order-independent): matrices
/// N(0, 1/fan_in), norm weights 1 + N(0, 0.1²), other vectors N(0, 0.1²), embedding rows N(0, 1). It demonstrates the
/// pipeline and the memory guard; the images are noise-like, not meaningful.
/// </summary>
public sealed class RandomWeights : IWeightProvider, Residency.IStreamableWeights
{
    private readonly IDeviceAllocator _allocator;
    private readonly IComputeOps _ops;
    private readonly int _seed;
    private readonly WeightCache _cache = new();

    /// <summary>Creates the provider; tensors are allocated on first request with the <c>weights</c> tag, all as F32.</summary>
    /// <param name="allocator">Where the weights are allocated.</param>
    /// <param name="ops">Uploads the values (nothing in planning mode).</param>
    /// <param name="seed">The model seed.</param>
    /// <param name="quantizedDType">8-bit weights (I8 or F8E4M3) for the Linear matrices <see cref="WeightQuantization.Quantizes"/> selects: the seeded floats quantised at load; null for none.</param>
    public RandomWeights(IDeviceAllocator allocator, IComputeOps ops, int seed, TensorDType? quantizedDType = null)
    {
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        _ops = ops ?? throw new ArgumentNullException(nameof(ops));
        _seed = seed;
        QuantizedDType = WeightQuantization.Validate(quantizedDType, nameof(quantizedDType));
    }

    /// <inheritdoc />
    public TensorDType MatrixDType => TensorDType.F32;

    /// <summary>The 8-bit format of the quantised Linear matrices (null: none).</summary>
    public TensorDType? QuantizedDType { get; }

    /// <inheritdoc />
    public TensorDType MatrixDTypeFor(string name, IReadOnlyList<int> shape) => WeightQuantization.DTypeFor(name, shape, MatrixDType, QuantizedDType);

    /// <inheritdoc />
    public Tensor Matrix(string name, params int[] shape)
    {
        var (scale, offset) = Distribution(name, matrix: true, shape);
        return Get(name, MatrixDTypeFor(name, shape), shape, scale, offset);
    }

    /// <inheritdoc />
    public Tensor Vector(string name, params int[] shape)
    {
        var (scale, offset) = Distribution(name, matrix: false, shape);
        return Get(name, TensorDType.F32, shape, scale, offset);
    }

    /// <inheritdoc />
    public void LoadInto(string name, bool matrix, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var (scale, offset) = Distribution(name, matrix, destination.Shape);
        Fill(name, destination, scale, offset);
    }

    /// <inheritdoc />
    public void ReadInto(string name, bool matrix, TensorDType dtype, int[] shape, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (destination.IsEmpty) return;
        var (scale, offset) = Distribution(name, matrix, shape);
        long n = 1;
        foreach (int d in shape) n *= d;
        var host = SeededNoise.Create(Seed(name), checked((int)n));
        for (int i = 0; i < host.Length; i++) host[i] = offset + scale * host[i];
        WeightQuantization.WriteHost(dtype, shape, (start, rows, floats) => host.AsSpan(start * shape[^1], floats.Length).CopyTo(floats), destination);
    }

    private static (float Scale, float Offset) Distribution(string name, bool matrix, int[] shape)
    {
        if (matrix)
        {
            long fanIn = 1;
            for (int i = 1; i < shape.Length; i++) fanIn *= shape[i];
            return ((float)(1.0 / Math.Sqrt(Math.Max(1, fanIn))), 0f);
        }
        bool norm = name.Contains("norm", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal);
        return (0.1f, norm ? 1f : 0f);
    }

    private void Fill(string name, Tensor t, float scale, float offset)
    {
        if (_ops.IsPlanning) return;
        var host = SeededNoise.Create(Seed(name), checked((int)t.ElementCount));
        for (int i = 0; i < host.Length; i++) host[i] = offset + scale * host[i];
        if (WeightQuantization.IsQuantized(t.DType))
        {
            int cols = t.Shape[1];
            WeightQuantization.Write(t, (start, rows, floats) => host.AsSpan(start * cols, rows * cols).CopyTo(floats));
            return;
        }
        _ops.Upload(host, t);
    }

    /// <inheritdoc />
    public float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim)
    {
        var result = new float[rows.Length * dim];
        for (int r = 0; r < rows.Length; r++)
            SeededNoise.Fill(Seed(name) ^ (rows[r] * unchecked((long)0x9E3779B97F4A7C15UL)), result.AsSpan(r * dim, dim));
        return result;
    }

    private Tensor Get(string name, TensorDType dtype, int[] shape, float scale, float offset)
    {
        if (_cache.TryGet(name, shape, null, out var existing)) return existing;
        long n = 1;
        foreach (int d in shape) n *= d;
        var t = WeightCache.Allocate(_allocator, Math.Max(1, n), dtype, shape);
        Fill(name, t, scale, offset);
        return _cache.Add(name, t);
    }

    private long Seed(string name)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in name) { h ^= c; h *= 1099511628211UL; }
        return (long)h ^ _seed;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _cache.Clear();
    }
}
