using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Compute;

/// <summary>Options for <see cref="CheckpointWeights"/>.</summary>
public sealed record CheckpointWeightsOptions
{
    /// <summary>The device dtype of matrices (linear/conv weights): BF16 (default, as the reference runs), F16 or F32.</summary>
    public TensorDType MatrixDType { get; init; } = TensorDType.BF16;

    /// <summary>Whether disposing the provider also disposes the reader.</summary>
    public bool OwnsReader { get; init; }

    /// <summary>
    /// 8-bit weights: <see cref="TensorDType.I8"/> or <see cref="TensorDType.F8E4M3"/> quantises the Linear matrices
    /// <see cref="WeightQuantization.Quantizes"/> selects, at load (null, the default: none).
    /// </summary>
    public TensorDType? QuantizedDType { get; init; }
}

/// <summary>
/// Uploads weights from a safetensors checkpoint through the allocator (tag <see cref="AllocationTags.Weights"/>):
/// matrices are converted to <see cref="MatrixDType"/> (bf16 by round-to-nearest-even, exact when the file is
/// already bf16), vectors to F32. Each tensor is uploaded on first request and cached; the provider owns them.
/// <see cref="GatherRows"/> reads rows of host-resident tables (e.g. <c>embed_tokens</c>) without uploading them.
/// </summary>
public sealed partial class CheckpointWeights : IWeightProvider, Residency.IStreamableWeights
{
    // Conversion is staged in chunks so that a multi-GB fp32 matrix never needs a second full-size host copy.
    private const int ChunkElements = 1 << 20;

    private readonly ISafetensorsReader _reader;
    private readonly IDeviceAllocator _allocator;
    private readonly bool _ownsReader;
    private readonly WeightCache _tensors = new();
    private bool _disposed;

    /// <summary>Creates a provider over an open checkpoint reader.</summary>
    /// <param name="reader">The checkpoint (single file or sharded).</param>
    /// <param name="allocator">Where the weights are allocated; its backend must have real storage.</param>
    /// <param name="options">Device dtype of matrices and reader ownership (defaults: BF16, reader not owned).</param>
    public CheckpointWeights(ISafetensorsReader reader, IDeviceAllocator allocator, CheckpointWeightsOptions? options = null)
    {
        _reader = reader ?? throw new ArgumentNullException(nameof(reader));
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        options ??= new CheckpointWeightsOptions();
        MatrixDType = WeightCache.ValidateMatrixDType(options.MatrixDType, nameof(options), "MatrixDType must be F32, F16 or BF16.");
        QuantizedDType = WeightQuantization.Validate(options.QuantizedDType, nameof(options));
        _ownsReader = options.OwnsReader;
    }

    /// <inheritdoc />
    public TensorDType MatrixDType { get; }

    /// <summary>Elements (parameters) of all weights provided so far.</summary>
    public long ParameterCount => _tensors.ParameterCount;

    /// <summary>Bytes of all weights uploaded so far.</summary>
    public long TotalBytes => _tensors.TotalBytes;

    /// <inheritdoc />
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="WeightShapeException">The stored shape differs from <paramref name="shape"/>.</exception>
    public Tensor Matrix(string name, params int[] shape) => Get(name, MatrixDTypeFor(name, shape), shape);

    /// <inheritdoc />
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="WeightShapeException">The stored shape differs from <paramref name="shape"/>.</exception>
    public Tensor Vector(string name, params int[] shape) => Get(name, TensorDType.F32, shape);

    /// <inheritdoc />
    /// <exception cref="WeightShapeException">The table is not <c>[rows, dim]</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A row index is outside the table.</exception>
    public float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = _reader.GetInfo(name);
        if (info.Shape.Length != 2 || info.Shape[1] != dim)
            throw new WeightShapeException(name, [-1, dim], info.Shape, "A gather table must be [rows, dim].");
        int tableRows = info.Shape[0];
        int elemSize = info.DType.ElementSize();
        ReadOnlySpan<byte> bytes = _reader.GetBytes(name);
        var result = new float[checked(rows.Length * dim)];
        for (int i = 0; i < rows.Length; i++)
        {
            int r = rows[i];
            if ((uint)r >= (uint)tableRows)
                throw new ArgumentOutOfRangeException(nameof(rows), r, $"Row {r} of '{name}' must lie in 0..{tableRows - 1}.");
            SafetensorsConvert.ToSingle(bytes.Slice(checked(r * dim * elemSize), dim * elemSize), info.DType, result.AsSpan(i * dim, dim));
        }
        return result;
    }

    /// <inheritdoc />
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="WeightShapeException">The stored shape differs from the destination's.</exception>
    public void LoadInto(string name, bool matrix, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        WeightCache.ValidateRequest(name, destination.Shape, _disposed, this);
        var info = CheckedInfo(name, destination.Shape);
        Materialize(name, info.DType, destination);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _tensors.Clear();
        if (_ownsReader) _reader.Dispose();
    }

    private Tensor Get(string name, TensorDType dtype, int[] shape)
    {
        WeightCache.ValidateRequest(name, shape, _disposed, this);
        if (_tensors.TryGet(name, shape, null, out var cached))
            return cached;
        var info = CheckedInfo(name, shape);
        var tensor = WeightCache.Allocate(_allocator, info.ElementCount, dtype, shape);
        try
        {
            Materialize(name, info.DType, tensor);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return _tensors.Add(name, tensor);
    }

    private SafetensorsTensorInfo CheckedInfo(string name, int[] shape)
    {
        var info = _reader.GetInfo(name);
        if (!info.Shape.SequenceEqual(shape)) throw new WeightShapeException(name, shape, info.Shape);
        if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.BF16 or SafetensorsDType.F16))
            throw new WeightShapeException(name, shape, info.Shape, $"Its dtype {info.DType} is not a float type (F32, BF16, F16).");
        return info;
    }

    private static void Upload(string name, SafetensorsDType source, ReadOnlySpan<byte> bytes, Tensor tensor)
    {
        int srcSize = source.ElementSize();
        long total = tensor.ElementCount;
        // Same-format payloads go up verbatim (bf16 → bf16 stays bit exact).
        if ((source, tensor.DType) is (SafetensorsDType.F32, TensorDType.F32) or (SafetensorsDType.BF16, TensorDType.BF16) or (SafetensorsDType.F16, TensorDType.F16))
        {
            for (long start = 0; start < total; start += ChunkElements)
            {
                int n = (int)Math.Min(ChunkElements, total - start);
                var chunk = bytes.Slice(checked((int)(start * srcSize)), n * srcSize);
                CopyBytes(tensor, start, n, chunk);
            }
            return;
        }

        var floats = new float[Math.Min(ChunkElements, total)];
        ushort[]? halves = tensor.DType == TensorDType.F32 ? null : new ushort[floats.Length];
        for (long start = 0; start < total; start += ChunkElements)
        {
            int n = (int)Math.Min(ChunkElements, total - start);
            var dst = floats.AsSpan(0, n);
            SafetensorsConvert.ToSingle(bytes.Slice(checked((int)(start * srcSize)), n * srcSize), source, dst);
            switch (tensor.DType)
            {
                case TensorDType.F32:
                    CopyBytes(tensor, start, n, MemoryMarshal.AsBytes(dst));
                    break;
                case TensorDType.BF16:
                    for (int i = 0; i < n; i++) halves![i] = SafetensorsConvert.SingleToBFloat16(dst[i]);
                    CopyBytes(tensor, start, n, MemoryMarshal.AsBytes(halves.AsSpan(0, n)));
                    break;
                case TensorDType.F16:
                    for (int i = 0; i < n; i++) halves![i] = BitConverter.HalfToUInt16Bits((System.Half)dst[i]);
                    CopyBytes(tensor, start, n, MemoryMarshal.AsBytes(halves.AsSpan(0, n)));
                    break;
                default:
                    throw new WeightShapeException(name, tensor.Shape, tensor.Shape, $"Cannot store weights as {tensor.DType}.");
            }
        }
    }

    internal static void CopyBytes(Tensor tensor, long startElement, int count, ReadOnlySpan<byte> payload)
    {
        int elem = Tensor.ElementSize(tensor.DType);
        ArrayView<byte> view = tensor.Allocation.GetView<byte>((tensor.ElementOffset + tensor.ElementCount) * elem)
            .SubView((tensor.ElementOffset + startElement) * elem, (long)count * elem);
        view.CopyFromCPU(payload);
    }
}
