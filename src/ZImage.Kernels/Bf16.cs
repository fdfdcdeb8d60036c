using System.Runtime.CompilerServices;
using ILGPU;

namespace ZImage.Kernels;

/// <summary>
/// bfloat16 ⇄ float32 bit conversions. ILGPU 1.5.3 has no bf16 type, so bf16 tensors are stored as <see cref="ushort"/>
/// bits (the top half of a float32). Every method here is usable both on the host and inside kernels.
/// </summary>
public static class Bf16
{
    /// <summary>Widens bf16 bits to float32; exact.</summary>
    /// <param name="bits">The bf16 bit pattern.</param>
    /// <returns>The float32 with the same value.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => Interop.IntAsFloat((uint)bits << 16);

    /// <summary>Narrows float32 to bf16 bits with round-to-nearest-even (as PyTorch's <c>.to(torch.bfloat16)</c>).</summary>
    /// <param name="value">The value to narrow. NaN stays a (quiet) NaN; overflow rounds to ±infinity.</param>
    /// <returns>The bf16 bit pattern.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        // A NaN whose payload sits only in the low half would round to infinity: force the quiet bit instead.
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (ushort)((bits >> 16) | 0x0040u);
        uint lsb = (bits >> 16) & 1u;
        return (ushort)((bits + 0x7FFFu + lsb) >> 16);
    }

    /// <summary>Rounds a float32 to the nearest bf16 value and widens it back (the value a bf16 tensor would hold).</summary>
    /// <param name="value">The value to round.</param>
    /// <returns>The rounded value as float32.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float value) => ToFloat(FromFloat(value));
}
