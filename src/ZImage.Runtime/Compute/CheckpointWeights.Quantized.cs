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
}
