using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using IlgpuHalf = ILGPU.Half;

namespace ZImage.Kernels;

/// <summary>
/// Widens one stored weight element to float32 inside a kernel. Implemented by empty structs so that generic kernels
/// specialise per dtype (no virtual call on the device or in the CPU accelerator's JIT-compiled code).
/// </summary>
/// <typeparam name="T">The stored element type.</typeparam>
internal interface IWeightWidener<T>
    where T : unmanaged
{
    /// <summary>Returns <paramref name="value"/> as float32.</summary>
    float Widen(T value);
}

/// <summary>float32 weights: identity.</summary>
internal readonly struct F32Widener : IWeightWidener<float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Widen(float value) => value;
}

/// <summary>bfloat16 weights stored as bits: exact shift.</summary>
internal readonly struct Bf16Widener : IWeightWidener<ushort>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Widen(ushort value) => Bf16.ToFloat(value);
}

/// <summary>float16 weights: native conversion on CUDA.</summary>
internal readonly struct F16Widener : IWeightWidener<IlgpuHalf>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Widen(IlgpuHalf value) => (float)value;
}

/// <summary>Problem size and work split of one GEMM launch (a single kernel argument keeps launches cheap).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GemmShape
{
    public int M, N, K;
    /// <summary>1 when a bias is added, else 0 (the bias view is then a dummy).</summary>
    public int HasBias;
    /// <summary>Portable variant: output rows and columns per work unit, unit counts and the number of coarse threads.</summary>
    public int RowBlock, ColBlock, RowUnits, Units, Threads;
}

/// <summary>
/// Dense layer GEMM, <c>y[M,N] = x[M,K] · w[N,K]ᵀ + bias[N]</c>, with float32 activations, float32 accumulation and
/// weights in float32, float16 (<see cref="IlgpuHalf"/>) or bfloat16 (<see cref="ushort"/> bits). Row-major,
/// dense views. Two implementations behind one call, chosen by <see cref="KernelContext.Variant"/>:
/// <list type="bullet">
/// <item><see cref="KernelVariant.Gpu"/>: explicitly grouped 16×16-thread groups computing 64×64 output tiles, each
/// thread a 4×4 register block, with 32-deep K slices of x and w staged in (bank-conflict-padded) shared memory;
/// weights are widened to float32 while staged, so bf16/fp16 halve the global traffic.</item>
/// <item><see cref="KernelVariant.Portable"/>: about <see cref="KernelContext.PortableChunks"/> coarse threads, each
/// owning a contiguous run of 32×64 output blocks that it computes with 4×4 register blocks, streaming the
/// contiguous rows of x and w (plain-C# speed on the CPU accelerator).</item>
/// </list>
/// All kernels are compiled in the constructor. Launches are queued on <see cref="KernelContext.Stream"/>;
/// <c>y</c> must not overlap <c>x</c>, <c>w</c> or <c>bias</c>.
/// </summary>
public sealed class GemmKernels
{
    internal const int TileM = 64, TileN = 64, TileK = 32, TileStride = TileM + 1, GroupSide = 16;
    internal const int PortableRowBlock = 32, PortableColBlock = 64;

    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>? _portableF32;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, GemmShape>? _portableBf16;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>, GemmShape>? _portableF16;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>? _gpuF32;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, GemmShape>? _gpuBf16;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>, GemmShape>? _gpuF16;

    /// <summary>Compiles the kernels of <paramref name="context"/>'s variant for all three weight dtypes.</summary>
    /// <param name="context">Accelerator and variant.</param>
    public GemmKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator acc = context.Accelerator;
        if (context.Variant == KernelVariant.Gpu)
        {
            _gpuF32 = acc.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GpuKernel<float, F32Widener>);
            _gpuBf16 = acc.LoadKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, GemmShape>(GpuKernel<ushort, Bf16Widener>);
            _gpuF16 = acc.LoadKernel<ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>, GemmShape>(GpuKernel<IlgpuHalf, F16Widener>);
        }
        else
        {
            _portableF32 = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(PortableKernel<float, F32Widener>);
            _portableBf16 = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, GemmShape>(PortableKernel<ushort, Bf16Widener>);
            _portableF16 = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>, GemmShape>(PortableKernel<IlgpuHalf, F16Widener>);
        }
    }

    /// <summary>The context the kernels were compiled for.</summary>
    public KernelContext Context => _ctx;

    /// <summary>y[M,N] = x[M,K] · w[N,K]ᵀ + bias[N] with float32 weights.</summary>
    /// <param name="x">Input activations, row-major [M,K].</param>
    /// <param name="w">Weights, row-major [N,K] (PyTorch <c>Linear.weight</c> layout).</param>
    /// <param name="bias">Bias [N], or an empty view (e.g. <c>default</c>) for none.</param>
    /// <param name="y">Output, row-major [M,N]; fully overwritten.</param>
    /// <param name="m">Rows of x and y (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void Linear(ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        GemmShape s = Prepare(x, w.Length, bias, y, m, n, k, out ArrayView<float> b);
        if (_gpuF32 is not null) _gpuF32(_ctx.Stream, GpuConfig(s), x, w, b, y, s);
        else _portableF32!(_ctx.Stream, s.Threads, x, w, b, y, s);
    }

    /// <summary>y[M,N] = x[M,K] · w[N,K]ᵀ + bias[N] with bfloat16 weights (stored as <see cref="ushort"/> bits).</summary>
    /// <param name="x">Input activations, row-major [M,K].</param>
    /// <param name="w">bf16 weight bits, row-major [N,K].</param>
    /// <param name="bias">Bias [N], or an empty view for none.</param>
    /// <param name="y">Output, row-major [M,N]; fully overwritten.</param>
    /// <param name="m">Rows of x and y (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void Linear(ArrayView<float> x, ArrayView<ushort> w, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        GemmShape s = Prepare(x, w.Length, bias, y, m, n, k, out ArrayView<float> b);
        if (_gpuBf16 is not null) _gpuBf16(_ctx.Stream, GpuConfig(s), x, w, b, y, s);
        else _portableBf16!(_ctx.Stream, s.Threads, x, w, b, y, s);
    }

    /// <summary>y[M,N] = x[M,K] · w[N,K]ᵀ + bias[N] with float16 weights.</summary>
    /// <param name="x">Input activations, row-major [M,K].</param>
    /// <param name="w">fp16 weights (<see cref="IlgpuHalf"/>), row-major [N,K].</param>
    /// <param name="bias">Bias [N], or an empty view for none.</param>
    /// <param name="y">Output, row-major [M,N]; fully overwritten.</param>
    /// <param name="m">Rows of x and y (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void Linear(ArrayView<float> x, ArrayView<IlgpuHalf> w, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k)
    {
        GemmShape s = Prepare(x, w.Length, bias, y, m, n, k, out ArrayView<float> b);
        if (_gpuF16 is not null) _gpuF16(_ctx.Stream, GpuConfig(s), x, w, b, y, s);
        else _portableF16!(_ctx.Stream, s.Threads, x, w, b, y, s);
    }

    /// <summary>y[M,N] = x[M,K] · w[N,K]ᵀ (no bias) with float32 weights.</summary>
    /// <param name="x">Input activations [M,K].</param>
    /// <param name="w">Weights [N,K].</param>
    /// <param name="y">Output [M,N].</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void Linear(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int m, int n, int k) =>
        Linear(x, w, default(ArrayView<float>), y, m, n, k);

    /// <summary>y[M,N] = x[M,K] · w[N,K]ᵀ (no bias) with bfloat16 weight bits.</summary>
    /// <param name="x">Input activations [M,K].</param>
    /// <param name="w">bf16 weight bits [N,K].</param>
    /// <param name="y">Output [M,N].</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void Linear(ArrayView<float> x, ArrayView<ushort> w, ArrayView<float> y, int m, int n, int k) =>
        Linear(x, w, default(ArrayView<float>), y, m, n, k);

    /// <summary>y[M,N] = x[M,K] · w[N,K]ᵀ (no bias) with float16 weights.</summary>
    /// <param name="x">Input activations [M,K].</param>
    /// <param name="w">fp16 weights [N,K].</param>
    /// <param name="y">Output [M,N].</param>
    /// <param name="m">Rows (≥ 1).</param>
    /// <param name="n">Output features (≥ 1).</param>
    /// <param name="k">Input features (≥ 1).</param>
    public void Linear(ArrayView<float> x, ArrayView<IlgpuHalf> w, ArrayView<float> y, int m, int n, int k) =>
        Linear(x, w, default(ArrayView<float>), y, m, n, k);

    private GemmShape Prepare(ArrayView<float> x, long wLength, ArrayView<float> bias, ArrayView<float> y, int m, int n, int k, out ArrayView<float> biasArg)
    {
        GemmGuard.InRange(m, 1, int.MaxValue);
        GemmGuard.InRange(n, 1, int.MaxValue);
        GemmGuard.InRange(k, 1, int.MaxValue);
        GemmGuard.FitsInt32((long)m * k, nameof(x));
        GemmGuard.FitsInt32((long)n * k, "w");
        GemmGuard.FitsInt32((long)m * n, nameof(y));
        GemmGuard.Holds(x.Length, (long)m * k, nameof(x));
        GemmGuard.Holds(wLength, (long)n * k, "w");
        GemmGuard.Holds(y.Length, (long)m * n, nameof(y));
        bool hasBias = bias.Length > 0;
        if (hasBias) GemmGuard.Holds(bias.Length, n, nameof(bias));
        // Without a bias the kernel never reads the bias argument, but it still needs a valid view of this accelerator.
        biasArg = hasBias ? bias : y;

        var s = new GemmShape { M = m, N = n, K = k, HasBias = hasBias ? 1 : 0 };
        if (_ctx.Variant == KernelVariant.Portable)
        {
            s.RowBlock = PortableRowBlock;
            s.ColBlock = PortableColBlock;
            s.RowUnits = (m + PortableRowBlock - 1) / PortableRowBlock;
            s.Units = s.RowUnits * ((n + PortableColBlock - 1) / PortableColBlock);
            s.Threads = Math.Min(_ctx.PortableChunks, s.Units);
        }
        return s;
    }

    private static KernelConfig GpuConfig(in GemmShape s) => new(
        new Index2D((s.N + TileN - 1) / TileN, (s.M + TileM - 1) / TileM),
        new Index2D(GroupSide, GroupSide));

    // ---------------------------------------------------------------- portable variant

    internal static void PortableKernel<TW, TWiden>(Index1D thread, ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y, GemmShape s)
        where TW : unmanaged
        where TWiden : struct, IWeightWidener<TW>
    {
        int begin = (int)((long)thread.X * s.Units / s.Threads);
        int end = (int)((long)(thread.X + 1) * s.Units / s.Threads);
        // Units are numbered row-block-fastest, so a thread's consecutive units reuse the same 64 weight rows.
        for (int u = begin; u < end; u++)
        {
            int colUnit = u / s.RowUnits;
            int rowUnit = u - colUnit * s.RowUnits;
            int i0 = rowUnit * s.RowBlock;
            int i1 = Math.Min(s.M, i0 + s.RowBlock);
            int j0 = colUnit * s.ColBlock;
            int j1 = Math.Min(s.N, j0 + s.ColBlock);
            int j = j0;
            for (; j + 4 <= j1; j += 4)
            {
                int i = i0;
                for (; i + 4 <= i1; i += 4) Block4x4<TW, TWiden>(x, w, bias, y, s, i, j);
                for (; i < i1; i++) Block1x4<TW, TWiden>(x, w, bias, y, s, i, j);
            }
            for (; j < j1; j++)
            {
                for (int i = i0; i < i1; i++) Block1x1<TW, TWiden>(x, w, bias, y, s, i, j);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block4x4<TW, TWiden>(ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y, in GemmShape s, int i, int j)
        where TW : unmanaged
        where TWiden : struct, IWeightWidener<TW>
    {
        TWiden widen = default;
        int k = s.K;
        int xa = i * k, xb = xa + k, xc = xb + k, xd = xc + k;
        int wa = j * k, wb = wa + k, wc = wb + k, wd = wc + k;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int t = 0; t < k; t++)
        {
            float a0 = x[xa + t], a1 = x[xb + t], a2 = x[xc + t], a3 = x[xd + t];
            float b0 = widen.Widen(w[wa + t]), b1 = widen.Widen(w[wb + t]), b2 = widen.Widen(w[wc + t]), b3 = widen.Widen(w[wd + t]);
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
        }
        float d0 = 0, d1 = 0, d2 = 0, d3 = 0;
        if (s.HasBias != 0) { d0 = bias[j]; d1 = bias[j + 1]; d2 = bias[j + 2]; d3 = bias[j + 3]; }
        int n = s.N;
        int y0 = i * n + j;
        y[y0] = c00 + d0; y[y0 + 1] = c01 + d1; y[y0 + 2] = c02 + d2; y[y0 + 3] = c03 + d3;
        y0 += n;
        y[y0] = c10 + d0; y[y0 + 1] = c11 + d1; y[y0 + 2] = c12 + d2; y[y0 + 3] = c13 + d3;
        y0 += n;
        y[y0] = c20 + d0; y[y0 + 1] = c21 + d1; y[y0 + 2] = c22 + d2; y[y0 + 3] = c23 + d3;
        y0 += n;
        y[y0] = c30 + d0; y[y0 + 1] = c31 + d1; y[y0 + 2] = c32 + d2; y[y0 + 3] = c33 + d3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block1x4<TW, TWiden>(ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y, in GemmShape s, int i, int j)
        where TW : unmanaged
        where TWiden : struct, IWeightWidener<TW>
    {
        TWiden widen = default;
        int k = s.K;
        int xa = i * k;
        int wa = j * k, wb = wa + k, wc = wb + k, wd = wc + k;
        float c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (int t = 0; t < k; t++)
        {
            float a = x[xa + t];
            c0 += a * widen.Widen(w[wa + t]);
            c1 += a * widen.Widen(w[wb + t]);
            c2 += a * widen.Widen(w[wc + t]);
            c3 += a * widen.Widen(w[wd + t]);
        }
        if (s.HasBias != 0) { c0 += bias[j]; c1 += bias[j + 1]; c2 += bias[j + 2]; c3 += bias[j + 3]; }
        int y0 = i * s.N + j;
        y[y0] = c0; y[y0 + 1] = c1; y[y0 + 2] = c2; y[y0 + 3] = c3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block1x1<TW, TWiden>(ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y, in GemmShape s, int i, int j)
        where TW : unmanaged
        where TWiden : struct, IWeightWidener<TW>
    {
        TWiden widen = default;
        int k = s.K;
        int xa = i * k, wa = j * k;
        float c = 0;
        for (int t = 0; t < k; t++) c += x[xa + t] * widen.Widen(w[wa + t]);
        if (s.HasBias != 0) c += bias[j];
        y[i * s.N + j] = c;
    }

    // ---------------------------------------------------------------- GPU variant

    internal static void GpuKernel<TW, TWiden>(ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y, GemmShape s)
        where TW : unmanaged
        where TWiden : struct, IWeightWidener<TW>
    {
        // Slices are stored k-major ([kk][row], stride 65): the staging writes (32 consecutive kk per warp) then hit
        // 32 distinct banks, and the compute reads are broadcasts (x) or consecutive (w).
        ArrayView<float> xs = SharedMemory.Allocate<float>(TileK * TileStride);
        ArrayView<float> ws = SharedMemory.Allocate<float>(TileK * TileStride);
        TWiden widen = default;
        int tx = Group.IdxX, ty = Group.IdxY;
        int tid = ty * GroupSide + tx;
        int m0 = Grid.IdxY * TileM, n0 = Grid.IdxX * TileN;
        int lk = tid & (TileK - 1), lr = tid / TileK;
        int m = s.M, n = s.N, k = s.K;

        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int k0 = 0; k0 < k; k0 += TileK)
        {
            int gk = k0 + lk;
            // 256 threads stage 64 rows × 32 k each for x and w: 8 rows per thread, 32 consecutive k per warp
            // (coalesced 128 B rows for fp32, 64 B for 16-bit weights).
            for (int p = 0; p < TileM * TileK / (GroupSide * GroupSide); p++)
            {
                int r = lr + p * (GroupSide * GroupSide / TileK);
                int gm = m0 + r, gn = n0 + r;
                xs[lk * TileStride + r] = gm < m && gk < k ? x[gm * k + gk] : 0f;
                ws[lk * TileStride + r] = gn < n && gk < k ? widen.Widen(w[gn * k + gk]) : 0f;
            }
            Group.Barrier();
            for (int kk = 0; kk < TileK; kk++)
            {
                int o = kk * TileStride;
                float a0 = xs[o + ty], a1 = xs[o + ty + 16], a2 = xs[o + ty + 32], a3 = xs[o + ty + 48];
                float b0 = ws[o + tx], b1 = ws[o + tx + 16], b2 = ws[o + tx + 32], b3 = ws[o + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }

        // Thread (tx, ty) owns rows ty + 16·r and columns tx + 16·c: each store instruction writes 16 consecutive floats.
        StoreRow(bias, y, s, m0 + ty, n0 + tx, c00, c01, c02, c03);
        StoreRow(bias, y, s, m0 + ty + 16, n0 + tx, c10, c11, c12, c13);
        StoreRow(bias, y, s, m0 + ty + 32, n0 + tx, c20, c21, c22, c23);
        StoreRow(bias, y, s, m0 + ty + 48, n0 + tx, c30, c31, c32, c33);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(ArrayView<float> bias, ArrayView<float> y, in GemmShape s, int row, int col, float v0, float v1, float v2, float v3)
    {
        if (row >= s.M) return;
        int o = row * s.N;
        StoreOne(bias, y, s, o, col, v0);
        StoreOne(bias, y, s, o, col + 16, v1);
        StoreOne(bias, y, s, o, col + 32, v2);
        StoreOne(bias, y, s, o, col + 48, v3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOne(ArrayView<float> bias, ArrayView<float> y, in GemmShape s, int rowOffset, int col, float v)
    {
        if (col < s.N) y[rowOffset + col] = s.HasBias != 0 ? v + bias[col] : v;
    }
}
