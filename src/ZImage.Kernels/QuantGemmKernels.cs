using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>
/// Dense layer GEMM with 8-bit weights (<see cref="Quant8"/>): <c>y[M,N] = (x[M,K] · decode(q[N,K])ᵀ) ⊙ scale[N] + bias[N]</c>,
/// float32 activations and accumulation. The 8-bit codes are dequantized inside the GEMM kernels of
/// <see cref="GemmKernels"/> (the same GPU tile kernel, codes widened while staged into shared memory, and the same
/// portable register-blocked kernel); the per-output-channel scale and the bias are applied by a fused epilogue over y.
/// 8-bit weights move a quarter of the bytes of float32 weights.
/// </summary>
public sealed class QuantGemmKernels
{
    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<sbyte>, ArrayView<float>, ArrayView<float>, GemmShape>? _portableI8;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, GemmShape>? _portableF8;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<sbyte>, ArrayView<float>, ArrayView<float>, GemmShape>? _gpuI8;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, GemmShape>? _gpuF8;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> _epilogue;

    /// <summary>Compiles the kernels of <paramref name="context"/>'s variant.</summary>
    public QuantGemmKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator acc = context.Accelerator;
        if (context.Variant == KernelVariant.Gpu)
        {
            _gpuI8 = acc.LoadKernel<ArrayView<float>, ArrayView<sbyte>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmKernels.GpuKernel<sbyte, Int8Widener>);
            _gpuF8 = acc.LoadKernel<ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmKernels.GpuKernel<byte, Fp8E4M3Widener>);
        }
        else
        {
            _portableI8 = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<sbyte>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmKernels.PortableKernel<sbyte, Int8Widener>);
            _portableF8 = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmKernels.PortableKernel<byte, Fp8E4M3Widener>);
        }
        _epilogue = acc.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>(EpilogueKernel);
    }

    /// <summary>y = (x · qᵀ) ⊙ scale + bias with int8 codes q[N,K] (symmetric, per output channel).</summary>
    /// <param name="x">Activations [M,K].</param>
    /// <param name="q">int8 codes [N,K].</param>
    /// <param name="scale">Per-output-channel scales [N].</param>
    /// <param name="bias">Bias [N], or an empty view for none.</param>
    /// <param name="y">Output [M,N]; fully overwritten.</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void LinearInt8(ArrayView<float> x, ArrayView<sbyte> q, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        GemmShape s = Prepare(x, q.Length, scale, bias, y, m, n, k);
        if (_gpuI8 is not null) _gpuI8(_ctx.Stream, GpuConfig(s), x, q, y, y, s);
        else _portableI8!(_ctx.Stream, s.Threads, x, q, y, y, s);
        Epilogue(scale, bias, y, m, n);
    }

    /// <summary>y = (x · decode(q)ᵀ) ⊙ scale + bias with fp8 e4m3fn codes q[N,K] (per-output-channel scale).</summary>
    /// <param name="x">Activations [M,K].</param>
    /// <param name="q">fp8 e4m3fn bits [N,K].</param>
    /// <param name="scale">Per-output-channel scales [N].</param>
    /// <param name="bias">Bias [N], or an empty view for none.</param>
    /// <param name="y">Output [M,N]; fully overwritten.</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void LinearFp8E4M3(ArrayView<float> x, ArrayView<byte> q, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        GemmShape s = Prepare(x, q.Length, scale, bias, y, m, n, k);
        if (_gpuF8 is not null) _gpuF8(_ctx.Stream, GpuConfig(s), x, q, y, y, s);
        else _portableF8!(_ctx.Stream, s.Threads, x, q, y, y, s);
        Epilogue(scale, bias, y, m, n);
    }

    private void Epilogue(ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y, int m, int n)
    {
        var c = ElementwiseChunks.For(_ctx, (long)m * n, nameof(m));
        // Without a bias the kernel never reads it, but it needs a valid view of this accelerator.
        _epilogue(_ctx.Stream, c.Threads, c, n, bias.Length > 0 ? 1 : 0, scale, bias.Length > 0 ? bias : scale, y);
    }

    private GemmShape Prepare(ArrayView<float> x, long qLength, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        GemmGuard.InRange(m, 1, int.MaxValue);
        GemmGuard.InRange(n, 1, int.MaxValue);
        GemmGuard.InRange(k, 1, int.MaxValue);
        GemmGuard.FitsInt32((long)m * k, nameof(x));
        GemmGuard.FitsInt32((long)n * k, "q");
        GemmGuard.FitsInt32((long)m * n, nameof(y));
        GemmGuard.Holds(x.Length, (long)m * k, nameof(x));
        GemmGuard.Holds(qLength, (long)n * k, "q");
        GemmGuard.Holds(scale.Length, n, nameof(scale));
        GemmGuard.Holds(y.Length, (long)m * n, nameof(y));
        if (bias.Length > 0) GemmGuard.Holds(bias.Length, n, nameof(bias));
        ElementwiseChecks.Count((long)m * n, nameof(y));
        // The GEMM itself runs without a bias (HasBias 0); the epilogue adds it after the scale.
        var s = new GemmShape { M = m, N = n, K = k, HasBias = 0 };
        if (_ctx.Variant == KernelVariant.Portable)
        {
            s.RowBlock = GemmKernels.PortableRowBlock;
            s.ColBlock = GemmKernels.PortableColBlock;
            s.RowUnits = (m + s.RowBlock - 1) / s.RowBlock;
            s.Units = s.RowUnits * ((n + s.ColBlock - 1) / s.ColBlock);
            s.Threads = Math.Min(_ctx.PortableChunks, s.Units);
        }
        return s;
    }

    private static KernelConfig GpuConfig(in GemmShape s) => new(
        new Index2D((s.N + GemmKernels.TileN - 1) / GemmKernels.TileN, (s.M + GemmKernels.TileM - 1) / GemmKernels.TileM),
        new Index2D(GemmKernels.GroupSide, GemmKernels.GroupSide));

    private static void EpilogueKernel(Index1D t, ElementwiseChunks c, int n, int hasBias, ArrayView<float> scale, ArrayView<float> bias, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            int j = i % n;
            float v = y[i] * scale[j];
            y[i] = hasBias != 0 ? v + bias[j] : v;
        }
    }
}
