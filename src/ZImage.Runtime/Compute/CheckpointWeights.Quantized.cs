using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Compute;

/// <summary>Quantise-at-load: the 8-bit path of <see cref="CheckpointWeights"/>.</summary>
public sealed partial class CheckpointWeights
{
    /// <summary>The 8-bit format of the quantised Linear matrices (null: none).</summary>
    public TensorDType? QuantizedDType { get; }

    /// <inheritdoc />
    public TensorDType MatrixDTypeFor(string name, IReadOnlyList<int> shape) => WeightQuantization.DTypeFor(name, shape, MatrixDType, QuantizedDType);

    // Materialising a weight: float destinations take the converted (or verbatim) checkpoint payload; quantised ones
    // take the same host floats, quantised per row as the last step (so anything merged into the floats, e.g. LoRA
    // deltas, is quantised with them).
    private void Materialize(string name, SafetensorsDType source, Tensor destination)
    {
        if (!WeightQuantization.IsQuantized(destination.DType))
        {
            Upload(name, source, _reader.GetBytes(name), destination);
            return;
        }
        int cols = destination.Shape[1], srcSize = source.ElementSize();
        WeightQuantization.Write(destination, (start, rows, floats) =>
            SafetensorsConvert.ToSingle(_reader.GetBytes(name).Slice(checked(start * cols * srcSize), rows * cols * srcSize), source, floats), ChunkElements);
    }

    /// <inheritdoc />
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="WeightShapeException">The stored shape differs from <paramref name="shape"/>.</exception>
    public void ReadInto(string name, bool matrix, TensorDType dtype, int[] shape, Span<byte> destination)
    {
        WeightCache.ValidateRequest(name, shape, _disposed, this);
        var info = CheckedInfo(name, shape);
        var source = info.DType;
        int srcSize = source.ElementSize();
        long n = info.ElementCount;
        // Same-format payloads are copied verbatim, as the device path does (bf16 → bf16 stays bit exact).
        if ((source, dtype) is (SafetensorsDType.F32, TensorDType.F32) or (SafetensorsDType.BF16, TensorDType.BF16) or (SafetensorsDType.F16, TensorDType.F16))
        {
            _reader.GetBytes(name)[..checked((int)(n * srcSize))].CopyTo(destination);
            return;
        }
        int cols = shape.Length == 0 ? 1 : shape[^1];
        WeightQuantization.WriteHost(dtype, shape, (start, rows, floats) =>
            SafetensorsConvert.ToSingle(_reader.GetBytes(name).Slice(checked(start * cols * srcSize), rows * cols * srcSize), source, floats), destination, ChunkElements);
    }
}
