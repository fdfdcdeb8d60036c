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
}
