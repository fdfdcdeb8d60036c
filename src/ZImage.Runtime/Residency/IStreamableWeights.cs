using ZImage.Runtime.Compute;

namespace ZImage.Runtime.Residency;

/// <summary>
/// A weight provider that can also write a weight into a device tensor it does not own (a view into a ring slot),
/// without caching it: the host side of streamed (offloaded) layers. The checkpoint provider reads the memory-mapped
/// safetensors (converting to the slot's dtype), the planning provider only checks the shape, the random provider
/// regenerates the seeded values. The slot allocations themselves are made by <see cref="LayerRing{T}"/> through the
/// same allocator in real and planning mode, so plans stay exact.
/// </summary>
public interface IStreamableWeights : IWeightProvider
{
    /// <summary>Writes weight <paramref name="name"/> into <paramref name="destination"/> (its shape and dtype decide the conversion).</summary>
    /// <param name="name">The checkpoint key.</param>
    /// <param name="matrix">Whether it is requested as a matrix (<see cref="IWeightProvider.Matrix"/>) rather than a vector.</param>
    /// <param name="destination">A device tensor (usually a slot view) of the expected shape.</param>
    /// <exception cref="WeightShapeException">The stored shape differs from the destination's.</exception>
    void LoadInto(string name, bool matrix, Tensor destination);

    /// <summary>
    /// Writes weight <paramref name="name"/> in its device layout (<paramref name="dtype"/> elements; for the 8-bit
    /// formats the codes, padding and scales of <see cref="WeightQuantization"/>) into host memory: a ring's staging
    /// buffer, copied to the device on the copy stream. The bytes are exactly what <see cref="LoadInto"/> uploads.
    /// A planning provider only checks the shape (the span is then empty).
    /// </summary>
    /// <param name="name">The checkpoint key.</param>
    /// <param name="matrix">Whether it is requested as a matrix rather than a vector.</param>
    /// <param name="dtype">The device dtype (from <see cref="IWeightProvider.MatrixDTypeFor"/> for matrices, F32 for vectors).</param>
    /// <param name="shape">The expected shape.</param>
    /// <param name="destination">At least <see cref="Tensor.StorageBytes"/> bytes (empty in planning).</param>
    /// <exception cref="WeightShapeException">The stored shape differs from <paramref name="shape"/>.</exception>
    void ReadInto(string name, bool matrix, TensorDType dtype, int[] shape, Span<byte> destination);
}
