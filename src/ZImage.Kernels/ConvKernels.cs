using ILGPU;
using ILGPU.Runtime;
using IlgpuHalf = ILGPU.Half;

namespace ZImage.Kernels;

/// <summary>
/// 2-D convolutions for the VAE decoder on x[Cin, H, W] → y[Cout, H', W'] (stride 1, zero padding k/2, kernel 1×1 or
/// 3×3, bias), with fp32, fp16 or bf16 weights [Cout, Cin, k, k] (widened to fp32 in the kernel, fp32 accumulation),
/// an optional fused nearest 2× upsample of the input (H' = 2H, W' = 2W: the VAE's Upsample = nearest ×2 then conv),
/// and a standalone nearest 2× upsample. GPU variant: explicitly grouped 16×16 output tiles × 4 output channels per
/// thread, input halo and weights staged through shared memory 8 input channels at a time. Portable variant: coarse
/// threads over (output channel, output row) units, each accumulating a whole output row with a sliding 3-tap window.
/// </summary>
public sealed class ConvKernels
{
    internal const int Tile = 16;
    internal const int CoBlock = 4;
    internal const int CiBlock = 8;
    internal const int Halo = Tile + 2;

    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _portF32;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ConvArgs, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>>? _portF16;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ConvArgs, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>>? _portBf16;
    private readonly Action<AcceleratorStream, KernelConfig, ConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _gpuF32;
    private readonly Action<AcceleratorStream, KernelConfig, ConvArgs, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>>? _gpuF16;
    private readonly Action<AcceleratorStream, KernelConfig, ConvArgs, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>>? _gpuBf16;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, int, int, ArrayView<float>, ArrayView<float>> _upsample;

    /// <summary>Loads (compiles) the kernels of the context's variant for all three weight dtypes.</summary>
    /// <param name="context">Accelerator and resolved variant.</param>
    public ConvKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator a = context.Accelerator;
        if (context.Variant == KernelVariant.Gpu)
        {
            _gpuF32 = a.LoadKernel<ConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ConvGpu<float, ConvWeightF32>);
            _gpuF16 = a.LoadKernel<ConvArgs, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>>(ConvGpu<IlgpuHalf, ConvWeightF16>);
            _gpuBf16 = a.LoadKernel<ConvArgs, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>>(ConvGpu<ushort, ConvWeightBf16>);
            _upsample = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, int, ArrayView<float>, ArrayView<float>>(UpsampleGpu);
        }
        else
        {
            _portF32 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ConvPortable<float, ConvWeightF32>);
            _portF16 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ConvArgs, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>>(ConvPortable<IlgpuHalf, ConvWeightF16>);
            _portBf16 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ConvArgs, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>>(ConvPortable<ushort, ConvWeightBf16>);
            _upsample = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, int, ArrayView<float>, ArrayView<float>>(UpsamplePortable);
        }
    }

    /// <summary>The context the kernels were loaded on.</summary>
    public KernelContext Context => _ctx;

    /// <summary>
    /// y = conv2d(upsample?(x), weight, bias) with fp32 weights [cout, cin, k, k], stride 1, zero padding k/2.
    /// Output size is height×width, or 2·height × 2·width when <paramref name="upsample"/> (nearest ×2 fused into the
    /// input read). x and y must not overlap.
    /// </summary>
    /// <param name="x">Input [cin, height, width].</param>
    /// <param name="weight">Weights [cout, cin, k, k].</param>
    /// <param name="bias">Bias [cout], or an empty view for none.</param>
    /// <param name="y">Output [cout, H', W'].</param>
    /// <param name="cin">Input channels (≥ 1).</param>
    /// <param name="cout">Output channels (≥ 1).</param>
    /// <param name="height">Input height (≥ 1).</param>
    /// <param name="width">Input width (≥ 1).</param>
    /// <param name="kernelSize">1 or 3.</param>
    /// <param name="upsample">Nearest-neighbour ×2 upsample of the input before the convolution.</param>
    public void Conv2d(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width, int kernelSize, bool upsample = false)
    {
        var p = Check(x, weight, bias, y, cin, cout, height, width, kernelSize, upsample);
        if (_gpuF32 is not null) _gpuF32(_ctx.Stream, GpuConfig(p), p, x, weight, bias, y);
        else { var c = PortableChunks(p); _portF32!(_ctx.Stream, c.Threads, c, p, x, weight, bias, y); }
    }

    /// <summary>As <see cref="Conv2d(ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, int, int, int, int, int, bool)"/> with fp16 weights.</summary>
    /// <param name="x">Input [cin, height, width].</param>
    /// <param name="weight">fp16 weights [cout, cin, k, k].</param>
    /// <param name="bias">Bias [cout], or an empty view for none.</param>
    /// <param name="y">Output [cout, H', W'].</param>
    /// <param name="cin">Input channels (≥ 1).</param>
    /// <param name="cout">Output channels (≥ 1).</param>
    /// <param name="height">Input height (≥ 1).</param>
    /// <param name="width">Input width (≥ 1).</param>
    /// <param name="kernelSize">1 or 3.</param>
    /// <param name="upsample">Nearest-neighbour ×2 upsample of the input before the convolution.</param>
    public void Conv2d(ArrayView<float> x, ArrayView<IlgpuHalf> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width, int kernelSize, bool upsample = false)
    {
        var p = Check(x, weight, bias, y, cin, cout, height, width, kernelSize, upsample);
        if (_gpuF16 is not null) _gpuF16(_ctx.Stream, GpuConfig(p), p, x, weight, bias, y);
        else { var c = PortableChunks(p); _portF16!(_ctx.Stream, c.Threads, c, p, x, weight, bias, y); }
    }

    /// <summary>
    /// As <see cref="Conv2d(ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, int, int, int, int, int, bool)"/>
    /// with bf16 weights stored as their raw 16-bit patterns (the high half of the fp32 bits).
    /// </summary>
    /// <param name="x">Input [cin, height, width].</param>
    /// <param name="weight">bf16 bit patterns [cout, cin, k, k].</param>
    /// <param name="bias">Bias [cout], or an empty view for none.</param>
    /// <param name="y">Output [cout, H', W'].</param>
    /// <param name="cin">Input channels (≥ 1).</param>
    /// <param name="cout">Output channels (≥ 1).</param>
    /// <param name="height">Input height (≥ 1).</param>
    /// <param name="width">Input width (≥ 1).</param>
    /// <param name="kernelSize">1 or 3.</param>
    /// <param name="upsample">Nearest-neighbour ×2 upsample of the input before the convolution.</param>
    public void Conv2dBf16(ArrayView<float> x, ArrayView<ushort> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width, int kernelSize, bool upsample = false)
    {
        var p = Check(x, weight, bias, y, cin, cout, height, width, kernelSize, upsample);
        if (_gpuBf16 is not null) _gpuBf16(_ctx.Stream, GpuConfig(p), p, x, weight, bias, y);
        else { var c = PortableChunks(p); _portBf16!(_ctx.Stream, c.Threads, c, p, x, weight, bias, y); }
    }

    /// <summary>Nearest-neighbour 2× upsample: y[c, 2h+i, 2w+j] = x[c, h, w] for x[channels, height, width].</summary>
    /// <param name="x">Input [channels, height, width].</param>
    /// <param name="y">Output [channels, 2·height, 2·width] (must not overlap x).</param>
    /// <param name="channels">Channels (≥ 1).</param>
    /// <param name="height">Input height (≥ 1).</param>
    /// <param name="width">Input width (≥ 1).</param>
    public void UpsampleNearest2x(ArrayView<float> x, ArrayView<float> y, int channels, int height, int width)
    {
        ElementwiseChecks.Positive(channels, nameof(channels));
        ElementwiseChecks.Positive(height, nameof(height));
        ElementwiseChecks.Positive(width, nameof(width));
        long n = (long)channels * height * width;
        ElementwiseChecks.Count(n * 4, "channels*2height*2width");
        ElementwiseChecks.Length(x, n, nameof(x));
        ElementwiseChecks.Length(y, n * 4, nameof(y));
        // Portable: one unit per output row (no per-element division); GPU: one thread per output element.
        long units = _ctx.Variant == KernelVariant.Gpu ? n * 4 : (long)channels * height * 2;
        var c = ElementwiseChunks.For(_ctx, units, "upsample work items");
        _upsample(_ctx.Stream, c.Threads, c, height, width, x, y);
    }

    // One work unit per (output channel, output row): enough units to balance, each a whole row of sliding-window work.
    private ElementwiseChunks PortableChunks(ConvArgs p) => ElementwiseChunks.For(_ctx, (long)p.Cout * p.H, "cout*height");

    private static KernelConfig GpuConfig(ConvArgs p)
    {
        int tiles = ((p.W + Tile - 1) / Tile) * ((p.H + Tile - 1) / Tile);
        int coBlocks = (p.Cout + CoBlock - 1) / CoBlock;
        return new KernelConfig(tiles * coBlocks, Tile * Tile);
    }

    private static ConvArgs Check<TW>(ArrayView<float> x, ArrayView<TW> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width, int kernelSize, bool upsample)
        where TW : unmanaged
    {
        ElementwiseChecks.Positive(cin, nameof(cin));
        ElementwiseChecks.Positive(cout, nameof(cout));
        ElementwiseChecks.Positive(height, nameof(height));
        ElementwiseChecks.Positive(width, nameof(width));
        if (kernelSize != 1 && kernelSize != 3)
        {
            throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, $"kernelSize = {kernelSize} is not supported; allowed values are 1 and 3.");
        }

        int up = upsample ? 1 : 0;
        long outH = (long)height << up, outW = (long)width << up;
        ElementwiseChecks.Count((long)cin * height * width, "cin*height*width");
        ElementwiseChecks.Count(cout * outH * outW, "cout*outHeight*outWidth");
        ElementwiseChecks.Count((long)cout * cin * kernelSize * kernelSize, "cout*cin*k*k");
        ElementwiseChecks.Length(x, (long)cin * height * width, nameof(x));
        ElementwiseChecks.Length(weight, (long)cout * cin * kernelSize * kernelSize, nameof(weight));
        ElementwiseChecks.OptionalLength(bias, cout, nameof(bias));
        ElementwiseChecks.Length(y, cout * outH * outW, nameof(y));
        return new ConvArgs(cin, cout, (int)outH, (int)outW, height, width, kernelSize, up, bias.Length > 0 ? 1 : 0);
    }

    private static void ConvPortable<TW, TR>(Index1D t, ElementwiseChunks c, ConvArgs p, ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y)
        where TW : unmanaged
        where TR : struct, IConvWeight<TW>
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        TR widen = default;
        int kk = p.K * p.K;
        int pad = p.K >> 1;
        for (int u = first; u < last; u += c.Step)
        {
            int co = u / p.H;
            int r = u - co * p.H;
            int ob = u * p.W;
            float b0 = p.HasBias != 0 ? bias[co] : 0f;
            for (int i = 0; i < p.W; i++) y[ob + i] = b0;
            // Rows of the (possibly upsampled) input that this output row reads.
            int rowLo = r - pad;
            int rowHi = r + pad;
            bool interior3 = p.K == 3 && rowLo >= 0 && rowHi < p.H;
            for (int ci = 0; ci < p.Cin; ci++)
            {
                int wb = (co * p.Cin + ci) * kk;
                int plane = ci * p.InH;
                if (interior3)
                {
                    // All three input rows exist: one pass with nine taps per output element.
                    RowTaps9(x, y, ob, p.W, p.Up,
                        (plane + (rowLo >> p.Up)) * p.InW, (plane + (r >> p.Up)) * p.InW, (plane + (rowHi >> p.Up)) * p.InW,
                        widen.Widen(w[wb]), widen.Widen(w[wb + 1]), widen.Widen(w[wb + 2]),
                        widen.Widen(w[wb + 3]), widen.Widen(w[wb + 4]), widen.Widen(w[wb + 5]),
                        widen.Widen(w[wb + 6]), widen.Widen(w[wb + 7]), widen.Widen(w[wb + 8]));
                    continue;
                }

                for (int ky = 0; ky < p.K; ky++)
                {
                    int iy = r + ky - pad;
                    if (iy < 0 || iy >= p.H) continue;
                    int ib = (plane + (iy >> p.Up)) * p.InW;
                    if (p.K == 1)
                    {
                        RowTaps1(x, y, ob, p.W, p.Up, ib, widen.Widen(w[wb]));
                    }
                    else
                    {
                        int wk = wb + ky * 3;
                        RowTaps3(x, y, ob, p.W, p.Up, ib, widen.Widen(w[wk]), widen.Widen(w[wk + 1]), widen.Widen(w[wk + 2]));
                    }
                }
            }
        }
    }

    private static void RowTaps1(ArrayView<float> x, ArrayView<float> y, int ob, int width, int up, int ib, float w0)
    {
        if (up == 0)
        {
            for (int i = 0; i < width; i++) y[ob + i] += w0 * x[ib + i];
        }
        else
        {
            for (int i = 0; i < width; i++) y[ob + i] += w0 * x[ib + (i >> 1)];
        }
    }

    private static void RowTaps3(ArrayView<float> x, ArrayView<float> y, int ob, int width, int up, int ib, float w0, float w1, float w2)
    {
        // Sliding window (a, b, c) = input at (i-1, i, i+1); zero padding outside [0, width).
        float a = 0f, b = x[ib];
        int i = 0;
        for (; i < width - 1; i++)
        {
            float c = x[ib + ((i + 1) >> up)];
            y[ob + i] += w0 * a + w1 * b + w2 * c;
            a = b;
            b = c;
        }

        y[ob + i] += w0 * a + w1 * b;
    }

    private static void RowTaps9(ArrayView<float> x, ArrayView<float> y, int ob, int width, int up, int i0, int i1, int i2,
        float w00, float w01, float w02, float w10, float w11, float w12, float w20, float w21, float w22)
    {
        float a0 = 0f, a1 = 0f, a2 = 0f;
        float b0 = x[i0], b1 = x[i1], b2 = x[i2];
        int i = 0;
        for (; i < width - 1; i++)
        {
            int s = (i + 1) >> up;
            float c0 = x[i0 + s], c1 = x[i1 + s], c2 = x[i2 + s];
            y[ob + i] += (w00 * a0 + w01 * b0 + w02 * c0) + (w10 * a1 + w11 * b1 + w12 * c1) + (w20 * a2 + w21 * b2 + w22 * c2);
            a0 = b0; a1 = b1; a2 = b2;
            b0 = c0; b1 = c1; b2 = c2;
        }

        y[ob + i] += (w00 * a0 + w01 * b0) + (w10 * a1 + w11 * b1) + (w20 * a2 + w21 * b2);
    }

    private static void ConvGpu<TW, TR>(ConvArgs p, ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y)
        where TW : unmanaged
        where TR : struct, IConvWeight<TW>
    {
        var sIn = SharedMemory.Allocate<float>(CiBlock * Halo * Halo);
        var sW = SharedMemory.Allocate<float>(CoBlock * CiBlock * 9);
        TR widen = default;
        int tid = Group.IdxX;
        int tilesX = (p.W + Tile - 1) / Tile;
        int tiles = tilesX * ((p.H + Tile - 1) / Tile);
        int coBase = (Grid.IdxX / tiles) * CoBlock;
        int tile = Grid.IdxX % tiles;
        int ox0 = (tile % tilesX) * Tile;
        int oy0 = (tile / tilesX) * Tile;
        int lx = tid % Tile;
        int ly = tid / Tile;
        int kk = p.K * p.K;
        int pad = p.K >> 1;
        int hs = Tile + p.K - 1;
        int haloCount = CiBlock * hs * hs;
        int wCount = CoBlock * CiBlock * kk;
        float acc0 = 0f, acc1 = 0f, acc2 = 0f, acc3 = 0f;
        for (int ci0 = 0; ci0 < p.Cin; ci0 += CiBlock)
        {
            for (int i = tid; i < haloCount; i += Tile * Tile)
            {
                int cc = i / (hs * hs);
                int rem = i - cc * hs * hs;
                int uy = oy0 - pad + rem / hs;
                int ux = ox0 - pad + rem % hs;
                int ci = ci0 + cc;
                sIn[i] = ci < p.Cin && uy >= 0 && uy < p.H && ux >= 0 && ux < p.W
                    ? x[(ci * p.InH + (uy >> p.Up)) * p.InW + (ux >> p.Up)]
                    : 0f;
            }

            for (int i = tid; i < wCount; i += Tile * Tile)
            {
                int o = i / (CiBlock * kk);
                int rem = i - o * CiBlock * kk;
                int cc = rem / kk;
                int co = coBase + o;
                int ci = ci0 + cc;
                sW[i] = co < p.Cout && ci < p.Cin ? widen.Widen(w[(co * p.Cin + ci) * kk + rem - cc * kk]) : 0f;
            }

            Group.Barrier();
            for (int cc = 0; cc < CiBlock; cc++)
            {
                for (int ky = 0; ky < p.K; ky++)
                {
                    for (int kx = 0; kx < p.K; kx++)
                    {
                        float v = sIn[(cc * hs + ly + ky) * hs + lx + kx];
                        int wi = cc * kk + ky * p.K + kx;
                        acc0 += v * sW[wi];
                        acc1 += v * sW[CiBlock * kk + wi];
                        acc2 += v * sW[2 * CiBlock * kk + wi];
                        acc3 += v * sW[3 * CiBlock * kk + wi];
                    }
                }
            }

            Group.Barrier();
        }

        int ox = ox0 + lx;
        int oy = oy0 + ly;
        if (ox >= p.W || oy >= p.H) return;
        int plane = p.H * p.W;
        int o0 = (coBase * p.H + oy) * p.W + ox;
        if (coBase < p.Cout) y[o0] = acc0 + (p.HasBias != 0 ? bias[coBase] : 0f);
        if (coBase + 1 < p.Cout) y[o0 + plane] = acc1 + (p.HasBias != 0 ? bias[coBase + 1] : 0f);
        if (coBase + 2 < p.Cout) y[o0 + 2 * plane] = acc2 + (p.HasBias != 0 ? bias[coBase + 2] : 0f);
        if (coBase + 3 < p.Cout) y[o0 + 3 * plane] = acc3 + (p.HasBias != 0 ? bias[coBase + 3] : 0f);
    }

    private static void UpsamplePortable(Index1D t, ElementwiseChunks c, int height, int width, ArrayView<float> x, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int ow = width * 2;
        for (int row = first; row < last; row += c.Step)
        {
            // Output row `row` of plane ch is input row (row mod 2H)/2 of the same plane, i.e. input row index row >> 1.
            int src = (row >> 1) * width;
            int dst = row * ow;
            for (int i = 0; i < ow; i++) y[dst + i] = x[src + (i >> 1)];
        }
    }

    private static void UpsampleGpu(Index1D t, ElementwiseChunks c, int height, int width, ArrayView<float> x, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int ow = width * 2;
        for (int i = first; i < last; i += c.Step)
        {
            int row = i / ow;
            y[i] = x[(row >> 1) * width + ((i - row * ow) >> 1)];
        }
    }
}

/// <summary>Widens a stored weight element to fp32 inside a kernel.</summary>
/// <typeparam name="T">Stored element type.</typeparam>
internal interface IConvWeight<T>
    where T : unmanaged
{
    float Widen(T value);
}

internal readonly struct ConvWeightF32 : IConvWeight<float>
{
    public float Widen(float value) => value;
}

internal readonly struct ConvWeightF16 : IConvWeight<IlgpuHalf>
{
    public float Widen(IlgpuHalf value) => (float)value;
}

internal readonly struct ConvWeightBf16 : IConvWeight<ushort>
{
    public float Widen(ushort value) => Bf16.ToFloat(value);
}

/// <summary>Shape of a convolution launch (H, W are output sizes; InH, InW input sizes).</summary>
internal readonly struct ConvArgs
{
    public readonly int Cin;
    public readonly int Cout;
    public readonly int H;
    public readonly int W;
    public readonly int InH;
    public readonly int InW;
    public readonly int K;
    public readonly int Up;
    public readonly int HasBias;

    public ConvArgs(int cin, int cout, int h, int w, int inH, int inW, int k, int up, int hasBias)
    {
        Cin = cin;
        Cout = cout;
        H = h;
        W = w;
        InH = inH;
        InW = inW;
        K = k;
        Up = up;
        HasBias = hasBias;
    }
}
