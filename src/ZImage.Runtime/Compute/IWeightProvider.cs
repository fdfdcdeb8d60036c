namespace ZImage.Runtime.Compute;

/// <summary>
/// Supplies a model's weights as device tensors, by checkpoint name. The checkpoint implementation uploads them from
/// safetensors (converting dtypes); the planning implementation allocates the same sizes on a simulated device with
/// no data, so that planning mode sees the exact resident (base) bytes. Tensors are allocated with the
/// <c>weights</c> tag and owned by the provider (disposed with it).
/// </summary>
public interface IWeightProvider : IDisposable
{
    /// <summary>The dtype large matrices (linear and conv weights) are kept in on the device.</summary>
    TensorDType MatrixDType { get; }

    /// <summary>
    /// The dtype matrix <paramref name="name"/> of <paramref name="shape"/> is provided in: <see cref="MatrixDType"/>, or
    /// an 8-bit format for the Linear matrices a quantising provider quantises (<see cref="WeightQuantization"/>).
    /// </summary>
    TensorDType MatrixDTypeFor(string name, IReadOnlyList<int> shape) => MatrixDType;

    /// <summary>A weight matrix (linear <c>[out,in]</c> or conv <c>[out,in,kh,kw]</c>) in <see cref="MatrixDTypeFor"/>.</summary>
    /// <param name="name">The checkpoint key, e.g. <c>layers.0.attention.to_q.weight</c>.</param>
    /// <param name="shape">The shape the architecture expects; a mismatch throws naming the key and both shapes.</param>
    Tensor Matrix(string name, params int[] shape);

    /// <summary>A small tensor (bias, norm weight, pad token, RoPE-free parameters) always as F32.</summary>
    Tensor Vector(string name, params int[] shape);

    /// <summary>Rows of a host-resident table (e.g. <c>embed_tokens</c>, gather-only), as F32 <c>[rows.Length × dim]</c>.</summary>
    float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim);
}
