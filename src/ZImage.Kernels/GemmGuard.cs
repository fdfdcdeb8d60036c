using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

// The CPU accelerator emits kernel launchers into a dynamic assembly named ILGPURuntime; kernel argument structs
// (GemmShape, AttnShape, RopeShape) and widener structs are internal, so that assembly must see them.
[assembly: InternalsVisibleTo("ILGPURuntime")]

namespace ZImage.Kernels;

/// <summary>
/// Argument checks shared by the GEMM, attention and RoPE kernel families. The throw paths live in separate
/// non-inlined methods so that the checks cost a compare on the hot launch path.
/// </summary>
internal static class GemmGuard
{
    /// <summary>Throws unless <paramref name="min"/> ≤ <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    public static void InRange(int value, int min, int max, [CallerArgumentExpression(nameof(value))] string? name = null)
    {
        if (value < min || value > max) ThrowOutOfRange(name!, value, min, max);
    }

    /// <summary>Throws unless the view holds at least <paramref name="required"/> elements.</summary>
    public static void Holds(long viewLength, long required, string name)
    {
        if (viewLength < required) ThrowTooShort(name, viewLength, required);
    }

    /// <summary>Throws unless <paramref name="elements"/> fits the 32-bit indices the kernels use.</summary>
    public static void FitsInt32(long elements, string name)
    {
        if (elements > int.MaxValue) ThrowTooLarge(name, elements);
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowOutOfRange(string name, long value, long min, long max) =>
        throw new ArgumentOutOfRangeException(name, value, $"{name} = {value} is outside the allowed range [{min}, {max}].");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooShort(string name, long length, long required) =>
        throw new ArgumentException($"{name} has {length} elements but the shape needs at least {required}.", name);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooLarge(string name, long elements) =>
        throw new ArgumentOutOfRangeException(name, elements, $"{name} spans {elements} elements; kernels index with 32 bits, so at most {int.MaxValue} are allowed.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowArgument(string name, string message) => throw new ArgumentException(message, name);
}
