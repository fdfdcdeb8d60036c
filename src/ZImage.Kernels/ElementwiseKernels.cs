using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>
/// Elementwise and data-movement kernels on fp32 activations (SiLU, tanh, SwiGLU, add, scale, adaLN modulate, gated
/// residual, row copy and row fill). Every kernel is chunked (see the variant notes on <see cref="KernelVariant"/>):
/// the portable variant runs a few coarse threads over contiguous ranges, the GPU variant a grid-stride loop with one
/// thread per element. Chains that the DiT runs back to back are fused to keep launches few.
/// </summary>
public sealed class ElementwiseKernels
{
    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>> _silu;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>> _tanh;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, ArrayView<float>> _swiglu;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, ArrayView<float>> _add;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, float, ArrayView<float>> _scale;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> _modulate;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> _gatedResidual;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>> _copy;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, int, ArrayView<float>> _fill;

    /// <summary>Loads (compiles) every elementwise kernel on <paramref name="context"/>'s accelerator.</summary>
    /// <param name="context">Accelerator and resolved variant.</param>
    public ElementwiseKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator a = context.Accelerator;
        _silu = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>>(SiluKernel);
        _tanh = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>>(TanhKernel);
        _swiglu = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, ArrayView<float>>(SwiGluKernel);
        _add = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, ArrayView<float>>(AddKernel);
        _scale = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, float, ArrayView<float>>(ScaleKernel);
        _modulate = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(ModulateKernel);
        _gatedResidual = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(GatedResidualKernel);
        _copy = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>>(CopyKernel);
        _fill = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, int, ArrayView<float>>(FillKernel);
    }

    /// <summary>The context the kernels were loaded on.</summary>
    public KernelContext Context => _ctx;

    /// <summary>y[i] = SiLU(x[i]) = x·sigmoid(x) for i &lt; <paramref name="n"/>. x and y may alias.</summary>
    /// <param name="x">Input, at least n elements.</param>
    /// <param name="y">Output, at least n elements.</param>
    /// <param name="n">Element count.</param>
    public void Silu(ArrayView<float> x, ArrayView<float> y, long n)
    {
        Check2(x, y, n);
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _silu(_ctx.Stream, c.Threads, c, x, y);
    }

    /// <summary>y[i] = tanh(x[i]) for i &lt; <paramref name="n"/>. x and y may alias.</summary>
    /// <param name="x">Input, at least n elements.</param>
    /// <param name="y">Output, at least n elements.</param>
    /// <param name="n">Element count.</param>
    public void Tanh(ArrayView<float> x, ArrayView<float> y, long n)
    {
        Check2(x, y, n);
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _tanh(_ctx.Stream, c.Threads, c, x, y);
    }

    /// <summary>y[i] = SiLU(gate[i])·up[i] (the SwiGLU FFN activation). y may alias gate or up.</summary>
    /// <param name="gate">Gate projection, at least n elements.</param>
    /// <param name="up">Up projection, at least n elements.</param>
    /// <param name="y">Output, at least n elements.</param>
    /// <param name="n">Element count.</param>
    public void SwiGlu(ArrayView<float> gate, ArrayView<float> up, ArrayView<float> y, long n)
    {
        Check2(gate, y, n);
        ElementwiseChecks.Length(up, n, nameof(up));
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _swiglu(_ctx.Stream, c.Threads, c, gate, up, y);
    }

    /// <summary>y[i] = a[i] + b[i]. y may alias a or b.</summary>
    /// <param name="a">First operand, at least n elements.</param>
    /// <param name="b">Second operand, at least n elements.</param>
    /// <param name="y">Output, at least n elements.</param>
    /// <param name="n">Element count.</param>
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, long n)
    {
        Check2(a, y, n);
        ElementwiseChecks.Length(b, n, nameof(b));
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _add(_ctx.Stream, c.Threads, c, a, b, y);
    }

    /// <summary>y[i] = factor·x[i]. x and y may alias.</summary>
    /// <param name="x">Input, at least n elements.</param>
    /// <param name="factor">Finite scalar factor.</param>
    /// <param name="y">Output, at least n elements.</param>
    /// <param name="n">Element count.</param>
    public void Scale(ArrayView<float> x, float factor, ArrayView<float> y, long n)
    {
        Check2(x, y, n);
        ElementwiseChecks.Finite(factor, nameof(factor));
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _scale(_ctx.Stream, c.Threads, c, x, factor, y);
    }

    /// <summary>
    /// adaLN modulation without shift: y[r,c] = x[r,c]·(1 + scale[c]) over x[rows, cols]; <paramref name="scale"/> is
    /// the raw modulation chunk (the +1 happens here). x and y may alias.
    /// </summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="scale">Raw scale [cols].</param>
    /// <param name="y">Output [rows, cols].</param>
    /// <param name="rows">Row count (≥ 0).</param>
    /// <param name="cols">Row width (≥ 1).</param>
    public void Modulate(ArrayView<float> x, ArrayView<float> scale, ArrayView<float> y, int rows, int cols)
    {
        long n = CheckRows(rows, cols);
        Check2(x, y, n);
        ElementwiseChecks.Length(scale, cols, nameof(scale));
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, "rows*cols");
        _modulate(_ctx.Stream, c.Threads, c, x, scale, cols, y);
    }

    /// <summary>
    /// Gated residual: residual[r,c] += tanh(gate[c])·branch[r,c]; <paramref name="gate"/> is the raw modulation chunk
    /// (tanh happens here). For the DiT's sandwich norm prefer <see cref="NormKernels.RmsNormGatedResidual"/>, which
    /// also normalises the branch in the same launch.
    /// </summary>
    /// <param name="residual">Residual stream [rows, cols], updated in place.</param>
    /// <param name="branch">Branch output [rows, cols] (must not alias residual).</param>
    /// <param name="gate">Raw gate [cols].</param>
    /// <param name="rows">Row count (≥ 0).</param>
    /// <param name="cols">Row width (≥ 1).</param>
    public void GatedResidual(ArrayView<float> residual, ArrayView<float> branch, ArrayView<float> gate, int rows, int cols)
    {
        long n = CheckRows(rows, cols);
        Check2(branch, residual, n);
        ElementwiseChecks.Length(gate, cols, nameof(gate));
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, "rows*cols");
        _gatedResidual(_ctx.Stream, c.Threads, c, branch, gate, cols, residual);
    }

    /// <summary>
    /// Copies rows [srcRow, srcRow+rowCount) of src[., dim] into rows [dstRow, dstRow+rowCount) of dst[., dim]
    /// (e.g. concatenating image and caption tokens, or padding with copies of the last row). src and dst must not overlap.
    /// </summary>
    /// <param name="src">Source matrix, row width <paramref name="dim"/>.</param>
    /// <param name="srcRow">First source row (≥ 0).</param>
    /// <param name="dst">Destination matrix, row width <paramref name="dim"/>.</param>
    /// <param name="dstRow">First destination row (≥ 0).</param>
    /// <param name="rowCount">Rows to copy (≥ 0).</param>
    /// <param name="dim">Row width (≥ 1).</param>
    public void CopyRows(ArrayView<float> src, int srcRow, ArrayView<float> dst, int dstRow, int rowCount, int dim)
    {
        ElementwiseChecks.NonNegative(srcRow, nameof(srcRow));
        ElementwiseChecks.NonNegative(dstRow, nameof(dstRow));
        long n = CheckRows(rowCount, dim);
        ElementwiseChecks.Length(src, ((long)srcRow + rowCount) * dim, nameof(src));
        ElementwiseChecks.Length(dst, ((long)dstRow + rowCount) * dim, nameof(dst));
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, "rowCount*dim");
        _copy(_ctx.Stream, c.Threads, c, src.SubView((long)srcRow * dim, n), dst.SubView((long)dstRow * dim, n));
    }

    /// <summary>Fills rows [dstRow, dstRow+rowCount) of dst[., dim] with copies of <paramref name="vector"/>[dim] (pad tokens).</summary>
    /// <param name="vector">The row to broadcast, at least <paramref name="dim"/> elements.</param>
    /// <param name="dst">Destination matrix, row width <paramref name="dim"/>.</param>
    /// <param name="dstRow">First destination row (≥ 0).</param>
    /// <param name="rowCount">Rows to fill (≥ 0).</param>
    /// <param name="dim">Row width (≥ 1).</param>
    public void FillRows(ArrayView<float> vector, ArrayView<float> dst, int dstRow, int rowCount, int dim)
    {
        ElementwiseChecks.NonNegative(dstRow, nameof(dstRow));
        long n = CheckRows(rowCount, dim);
        ElementwiseChecks.Length(vector, dim, nameof(vector));
        ElementwiseChecks.Length(dst, ((long)dstRow + rowCount) * dim, nameof(dst));
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, "rowCount*dim");
        _fill(_ctx.Stream, c.Threads, c, vector, dim, dst.SubView((long)dstRow * dim, n));
    }

    private static long CheckRows(int rows, int cols)
    {
        ElementwiseChecks.NonNegative(rows, nameof(rows));
        ElementwiseChecks.Positive(cols, nameof(cols));
        long n = (long)rows * cols;
        ElementwiseChecks.Count(n, "rows*cols");
        return n;
    }

    private static void Check2(ArrayView<float> x, ArrayView<float> y, long n)
    {
        ElementwiseChecks.Count(n, nameof(n));
        ElementwiseChecks.Length(x, n, nameof(x));
        ElementwiseChecks.Length(y, n, nameof(y));
    }

    internal static float SiluOf(float v) => v / (1f + MathF.Exp(-v));

    private static void SiluKernel(Index1D t, ElementwiseChunks c, ArrayView<float> x, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = SiluOf(x[i]);
        }
    }

    private static void TanhKernel(Index1D t, ElementwiseChunks c, ArrayView<float> x, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = KernelMath.Tanh(x[i]);
        }
    }

    private static void SwiGluKernel(Index1D t, ElementwiseChunks c, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = SiluOf(gate[i]) * up[i];
        }
    }

    private static void AddKernel(Index1D t, ElementwiseChunks c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = a[i] + b[i];
        }
    }

    private static void ScaleKernel(Index1D t, ElementwiseChunks c, ArrayView<float> x, float factor, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = factor * x[i];
        }
    }

    private static void ModulateKernel(Index1D t, ElementwiseChunks c, ArrayView<float> x, ArrayView<float> scale, int cols, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        // The column is tracked incrementally: one modulo per thread instead of one per element.
        int col = first % cols;
        int stepMod = c.Step % cols;
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = x[i] * (1f + scale[col]);
            col += stepMod;
            if (col >= cols) col -= cols;
        }
    }

    private static void GatedResidualKernel(Index1D t, ElementwiseChunks c, ArrayView<float> branch, ArrayView<float> gate, int cols, ArrayView<float> residual)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int col = first % cols;
        int stepMod = c.Step % cols;
        for (int i = first; i < last; i += c.Step)
        {
            residual[i] += KernelMath.Tanh(gate[col]) * branch[i];
            col += stepMod;
            if (col >= cols) col -= cols;
        }
    }

    private static void CopyKernel(Index1D t, ElementwiseChunks c, ArrayView<float> src, ArrayView<float> dst)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            dst[i] = src[i];
        }
    }

    private static void FillKernel(Index1D t, ElementwiseChunks c, ArrayView<float> vector, int cols, ArrayView<float> dst)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int col = first % cols;
        int stepMod = c.Step % cols;
        for (int i = first; i < last; i += c.Step)
        {
            dst[i] = vector[col];
            col += stepMod;
            if (col >= cols) col -= cols;
        }
    }
}
