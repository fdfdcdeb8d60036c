using System.Runtime.CompilerServices;

namespace ZImage.Kernels;

/// <summary>
/// How a kernel reads and writes one stored activation element. Activations are computed in float32 inside every kernel
/// and stored either as float32 or as bfloat16 bits (<c>ushort</c>: ILGPU 1.5.3 has no bf16 type); kernels are generic
/// over <typeparamref name="T"/> and a codec struct, so each storage format is its own specialisation (no virtual call
/// on the device or in the CPU accelerator's code). Stores round to nearest even, as PyTorch's bf16 tensors do.
/// </summary>
/// <typeparam name="T">The stored element type: <see cref="float"/> or <see cref="ushort"/> (bf16 bits).</typeparam>
internal interface IActivationCodec<T>
    where T : unmanaged
{
    /// <summary>The stored element as float32 (exact for both formats).</summary>
    float Load(T value);

    /// <summary>A float32 result as the stored element (bf16: round to nearest even).</summary>
    T Store(float value);
}

/// <summary>float32 activations: identity.</summary>
internal readonly struct F32Activations : IActivationCodec<float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Load(float value) => value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Store(float value) => value;
}

/// <summary>bfloat16 activations stored as bits: exact widening, round-to-nearest-even narrowing.</summary>
internal readonly struct Bf16Activations : IActivationCodec<ushort>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Load(ushort value) => Bf16.ToFloat(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ushort Store(float value) => Bf16.FromFloat(value);
}
