using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>
/// float32 ⇄ bfloat16 conversion of activations, where a model's bf16 workspace meets pipeline-level float32 data
/// (latents, caption features, decoded images). Narrowing rounds to nearest even (as PyTorch's <c>.to(torch.bfloat16)</c>),
/// widening is exact. Chunked like <see cref="ElementwiseKernels"/>.
/// </summary>
public sealed class ConvertKernels
{
    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<ushort>> _toBf16;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<ushort>, ArrayView<float>> _toF32;

    /// <summary>Loads (compiles) both conversions on <paramref name="context"/>'s accelerator.</summary>
    /// <param name="context">Accelerator and resolved variant.</param>
    public ConvertKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator a = context.Accelerator;
        _toBf16 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<ushort>>(Convert<float, F32Activations, ushort, Bf16Activations>);
        _toF32 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<ushort>, ArrayView<float>>(Convert<ushort, Bf16Activations, float, F32Activations>);
    }

    /// <summary>y[i] = bf16(x[i]) (round to nearest even) for i &lt; <paramref name="n"/>.</summary>
    /// <param name="x">float32 input, at least n elements.</param>
    /// <param name="y">bf16 bits output, at least n elements.</param>
    /// <param name="n">Element count.</param>
    public void ToBf16(ArrayView<float> x, ArrayView<ushort> y, long n)
    {
        Check(x, y, n);
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _toBf16(_ctx.Stream, c.Threads, c, x, y);
    }

    /// <summary>y[i] = float32(x[i]) (exact) for i &lt; <paramref name="n"/>.</summary>
    /// <param name="x">bf16 bits input, at least n elements.</param>
    /// <param name="y">float32 output, at least n elements.</param>
    /// <param name="n">Element count.</param>
    public void ToF32(ArrayView<ushort> x, ArrayView<float> y, long n)
    {
        Check(x, y, n);
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _toF32(_ctx.Stream, c.Threads, c, x, y);
    }

    private static void Check<TIn, TOut>(ArrayView<TIn> x, ArrayView<TOut> y, long n)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        ElementwiseChecks.Count(n, nameof(n));
        ElementwiseChecks.Length(x, n, nameof(x));
        ElementwiseChecks.Length(y, n, nameof(y));
    }

    private static void Convert<TIn, TInCodec, TOut, TOutCodec>(Index1D t, ElementwiseChunks c, ArrayView<TIn> x, ArrayView<TOut> y)
        where TIn : unmanaged
        where TInCodec : struct, IActivationCodec<TIn>
        where TOut : unmanaged
        where TOutCodec : struct, IActivationCodec<TOut>
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = default(TOutCodec).Store(default(TInCodec).Load(x[i]));
        }
    }
}
