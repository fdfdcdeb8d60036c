using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Pipeline.Engine;

/// <summary>
/// Seeded random weights with the shapes the models ask for, so the pipeline runs without a checkpoint (the demo model).
/// Each tensor is generated from <c>seed</c> and the FNV-1a hash of its name (order-independent): matrices
/// N(0, 1/fan_in), norm weights 1 + N(0, 0.1²), other vectors N(0, 0.1²), embedding rows N(0, 1). It demonstrates the
/// pipeline and the memory guard; the images are noise-like, not meaningful. Matrices are F32 (the tiny demo model) or,
/// for a full-size config such as <c>ZImageConfig.Turbo</c> (the doctor's GPU run), BF16 or F16, generated and
/// uploaded in chunks so the host never holds more than one chunk; in planning mode nothing is generated.
/// </summary>
public sealed class RandomWeights : IWeightProvider, Residency.IStreamableWeights
{
    private readonly IDeviceAllocator _allocator;
    private readonly IComputeOps _ops;
    private readonly int _seed;
    private const int ChunkElements = 1 << 20;
    private readonly WeightCache _cache = new();

    /// <summary>Creates the provider; tensors are allocated on first request with the <c>weights</c> tag.</summary>
    /// <param name="allocator">Where the weights are allocated.</param>
    /// <param name="ops">Uploads the generated values (nothing is generated when it is a planning ops).</param>
    /// <param name="seed">Seed of every tensor (combined with the hash of its name).</param>
    /// <param name="matrixDType">The dtype of matrices: F32 (default, the demo model), BF16 or F16; vectors are always F32.</param>
    /// <param name="quantizedDType">8-bit weights (I8 or F8E4M3) for the Linear matrices <see cref="WeightQuantization.Quantizes"/> selects: the seeded floats quantised at load; null for none.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="matrixDType"/> is not F32, F16 or BF16, or <paramref name="quantizedDType"/> is not an 8-bit format.</exception>
    public RandomWeights(IDeviceAllocator allocator, IComputeOps ops, int seed, TensorDType matrixDType = TensorDType.F32, TensorDType? quantizedDType = null)
    {
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        _ops = ops ?? throw new ArgumentNullException(nameof(ops));
        _seed = seed;
        MatrixDType = WeightCache.ValidateMatrixDType(matrixDType, nameof(matrixDType), "Matrix dtype must be F32, F16 or BF16.");
        QuantizedDType = WeightQuantization.Validate(quantizedDType, nameof(quantizedDType));
    }

    /// <inheritdoc />
    public TensorDType MatrixDType { get; }

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
        var host = HostValues(name, checked((int)n), scale, offset, chunked: dtype is TensorDType.BF16 or TensorDType.F16);
        WeightQuantization.WriteHost(dtype, shape, (start, rows, floats) => host.AsSpan(start * shape[^1], floats.Length).CopyTo(floats), destination);
    }

    // The values Fill uploads, on the host: one seeded sequence per tensor (F32 and 8-bit tensors), or one per
    // ChunkElements chunk (16-bit matrices of a full-size config, generated chunk by chunk in Fill).
    private float[] HostValues(string name, int n, float scale, float offset, bool chunked)
    {
        float[] host;
        if (!chunked) host = SeededNoise.Create(Seed(name), n);
        else
        {
            host = new float[n];
            long seed = Seed(name);
            for (long chunk = 0, start = 0; start < n; chunk++, start += ChunkElements)
                SeededNoise.Fill(ChunkSeed(seed, chunk), host.AsSpan((int)start, (int)Math.Min(ChunkElements, n - start)));
        }
        for (int i = 0; i < host.Length; i++) host[i] = offset + scale * host[i];
        return host;
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
        if (t.DType == TensorDType.F32 || WeightQuantization.IsQuantized(t.DType))
        {
            // The demo model's values (one sequence per tensor), unchanged since it shipped; 8-bit matrices are
            // those floats quantised at load.
            var host = HostValues(name, checked((int)t.ElementCount), scale, offset, chunked: false);
            if (WeightQuantization.IsQuantized(t.DType))
            {
                int cols = t.Shape[1];
                WeightQuantization.Write(t, (start, rows, floats) => host.AsSpan(start * cols, rows * cols).CopyTo(floats));
                return;
            }
            _ops.Upload(host, t);
            return;
        }
        // 16-bit matrices of a full-size config (6 G values for Turbo): one seeded sequence per 2^20-element chunk,
        // generated and converted in parallel a batch of chunks at a time, then copied in order.
        long total = t.ElementCount, chunks = (total + ChunkElements - 1) / ChunkElements;
        int batch = Math.Max(1, Environment.ProcessorCount);
        var buffers = new ushort[(int)Math.Min(batch, chunks)][];
        long seed = Seed(name);
        bool bf16 = t.DType == TensorDType.BF16;
        for (long first = 0; first < chunks; first += batch)
        {
            int count = (int)Math.Min(batch, chunks - first);
            Parallel.For(0, count, j =>
            {
                long chunk = first + j, start = chunk * ChunkElements;
                int n = (int)Math.Min(ChunkElements, total - start);
                var values = new float[n];
                SeededNoise.Fill(ChunkSeed(seed, chunk), values);
                var halves = buffers[j] is { } b && b.Length == n ? b : buffers[j] = new ushort[n];
                for (int i = 0; i < n; i++)
                {
                    float v = offset + scale * values[i];
                    halves[i] = bf16 ? Models.Safetensors.SafetensorsConvert.SingleToBFloat16(v) : BitConverter.HalfToUInt16Bits((Half)v);
                }
            });
            for (int j = 0; j < count; j++)
                CheckpointWeights.CopyBytes(t, (first + j) * ChunkElements, buffers[j].Length, System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffers[j].AsSpan()));
        }
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

    // The seed of one ChunkElements chunk of a 16-bit matrix (Fill generates chunk by chunk, HostValues all at once).
    private static long ChunkSeed(long tensorSeed, long chunk) => tensorSeed ^ (chunk * unchecked((long)0xD1B54A32D192ED03UL));

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
