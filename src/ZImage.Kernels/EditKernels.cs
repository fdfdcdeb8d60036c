using ILGPU;
using ILGPU.Runtime;
using IlgpuHalf = ILGPU.Half;

namespace ZImage.Kernels;

/// <summary>
/// The kernels image editing adds around the models (img2img, inpaint): the VAE encoder's <c>Downsample2D</c>
/// convolution (zero-pad right/bottom by one, 3×3, stride 2, no other padding), the diagonal-Gaussian posterior
/// sample with the latent normalisation, flow-matching <c>scale_noise</c>, and the inpaint mask blend. All are chunked
/// elementwise launches (see <see cref="ElementwiseChunks"/>): the same code is the GPU variant (one output per
/// grid-stride iteration) and the portable variant (contiguous chunks per thread). The downsample conv runs once per
/// encoder block at each resolution, so a simple per-output dot product is enough.
/// </summary>
public sealed class EditKernels
{
    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, DownConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _downF32;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, DownConvArgs, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>> _downF16;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, DownConvArgs, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>> _downBf16;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<float>, float, float, int, ArrayView<float>, ArrayView<float>> _posterior;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, float, ArrayView<float>> _scaleNoise;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> _blend;

    /// <summary>Loads (compiles) the kernels.</summary>
    /// <param name="context">Accelerator and resolved variant.</param>
    public EditKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator a = context.Accelerator;
        _downF32 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, DownConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(DownConvKernel<float, ConvWeightF32>);
        _downF16 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, DownConvArgs, ArrayView<float>, ArrayView<IlgpuHalf>, ArrayView<float>, ArrayView<float>>(DownConvKernel<IlgpuHalf, ConvWeightF16>);
        _downBf16 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, DownConvArgs, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>>(DownConvKernel<ushort, ConvWeightBf16>);
        _posterior = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<float>, float, float, int, ArrayView<float>, ArrayView<float>>(PosteriorKernel);
        _scaleNoise = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, float, ArrayView<float>>(ScaleNoiseKernel);
        _blend = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(BlendKernel);
    }

    /// <summary>Output size of the downsample conv along an axis of <paramref name="size"/> input pixels: (size + 1 − 3)/2 + 1.</summary>
    /// <param name="size">Input size (≥ 2).</param>
    public static int DownsampledSize(int size) => (size - 2) / 2 + 1;

    /// <summary>
    /// diffusers <c>Downsample2D(use_conv=True, padding=0)</c>: y = conv3×3 stride 2 of x zero-padded by one column on
    /// the right and one row at the bottom. x <c>[cin,height,width]</c>, y <c>[cout,(height−2)/2+1,(width−2)/2+1]</c>,
    /// fp32 weights <c>[cout,cin,3,3]</c>, bias <c>[cout]</c> or empty.
    /// </summary>
    /// <param name="x">Input.</param>
    /// <param name="weight">Weights.</param>
    /// <param name="bias">Bias or an empty view.</param>
    /// <param name="y">Output (must not overlap x).</param>
    /// <param name="cin">Input channels (≥ 1).</param>
    /// <param name="cout">Output channels (≥ 1).</param>
    /// <param name="height">Input height (≥ 2).</param>
    /// <param name="width">Input width (≥ 2).</param>
    public void DownsampleConv(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width)
    {
        var (p, c) = CheckDown(x, weight, bias, y, cin, cout, height, width);
        _downF32(_ctx.Stream, c.Threads, c, p, x, weight, bias, y);
    }

    /// <summary>As the fp32 overload with fp16 weights.</summary>
    /// <param name="x">Input.</param>
    /// <param name="weight">Weights.</param>
    /// <param name="bias">Bias or an empty view.</param>
    /// <param name="y">Output (must not overlap x).</param>
    /// <param name="cin">Input channels (≥ 1).</param>
    /// <param name="cout">Output channels (≥ 1).</param>
    /// <param name="height">Input height (≥ 2).</param>
    /// <param name="width">Input width (≥ 2).</param>
    public void DownsampleConv(ArrayView<float> x, ArrayView<IlgpuHalf> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width)
    {
        var (p, c) = CheckDown(x, weight, bias, y, cin, cout, height, width);
        _downF16(_ctx.Stream, c.Threads, c, p, x, weight, bias, y);
    }

    /// <summary>As the fp32 overload with bf16 weights (raw 16-bit patterns).</summary>
    /// <param name="x">Input.</param>
    /// <param name="weight">Weights.</param>
    /// <param name="bias">Bias or an empty view.</param>
    /// <param name="y">Output (must not overlap x).</param>
    /// <param name="cin">Input channels (≥ 1).</param>
    /// <param name="cout">Output channels (≥ 1).</param>
    /// <param name="height">Input height (≥ 2).</param>
    /// <param name="width">Input width (≥ 2).</param>
    public void DownsampleConvBf16(ArrayView<float> x, ArrayView<ushort> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width)
    {
        var (p, c) = CheckDown(x, weight, bias, y, cin, cout, height, width);
        _downBf16(_ctx.Stream, c.Threads, c, p, x, weight, bias, y);
    }

    /// <summary>
    /// diffusers <c>DiagonalGaussianDistribution</c> on moments <c>[2C, n]</c> (mean = channels 0..C−1, logvar = C..2C−1):
    /// std = exp(0.5·clamp(logvar, −30, 20)); y = ((mean + std·eps) − shift)·scale, or ((mean) − shift)·scale when eps
    /// is empty (the mode). std is also written when <paramref name="std"/> is non-empty.
    /// </summary>
    /// <param name="moments">Encoder output <c>[2C, n]</c>.</param>
    /// <param name="eps">Standard-normal draws <c>[C, n]</c>, or empty for the mode.</param>
    /// <param name="scale">Multiplier after the shift (the VAE scaling factor; 1 for the raw sample).</param>
    /// <param name="shift">Subtracted first (the VAE shift factor; 0 for the raw sample).</param>
    /// <param name="y">Output <c>[C, n]</c>.</param>
    /// <param name="std">Optional output <c>[C, n]</c>, or empty.</param>
    /// <param name="channels">C (≥ 1).</param>
    /// <param name="plane">n = height·width (≥ 1).</param>
    public void PosteriorSample(ArrayView<float> moments, ArrayView<float> eps, float scale, float shift, ArrayView<float> y, ArrayView<float> std, int channels, int plane)
    {
        ElementwiseChecks.Positive(channels, nameof(channels));
        ElementwiseChecks.Positive(plane, nameof(plane));
        long n = (long)channels * plane;
        ElementwiseChecks.Count(2 * n, "2*channels*plane");
        ElementwiseChecks.Length(moments, 2 * n, nameof(moments));
        ElementwiseChecks.OptionalLength(eps, n, nameof(eps));
        ElementwiseChecks.Length(y, n, nameof(y));
        ElementwiseChecks.OptionalLength(std, n, nameof(std));
        var c = ElementwiseChunks.For(_ctx, n, "channels*plane");
        int flags = (eps.Length > 0 ? 1 : 0) | (std.Length > 0 ? 2 : 0);
        _posterior(_ctx.Stream, c.Threads, c, (int)n, moments, eps, scale, shift, flags, y, std);
    }

    /// <summary>Flow-matching <c>scale_noise</c>: y = σ·noise + (1 − σ)·x (y may alias x or noise).</summary>
    /// <param name="x">Clean latents.</param>
    /// <param name="noise">Noise, same length.</param>
    /// <param name="sigma">σ in [0, 1].</param>
    /// <param name="y">Output, same length.</param>
    public void ScaleNoise(ArrayView<float> x, ArrayView<float> noise, float sigma, ArrayView<float> y)
    {
        long n = x.Length;
        ElementwiseChecks.Positive(n, nameof(x));
        ElementwiseChecks.Length(noise, n, nameof(noise));
        ElementwiseChecks.Length(y, n, nameof(y));
        var c = ElementwiseChunks.For(_ctx, n, "latent elements");
        _scaleNoise(_ctx.Stream, c.Threads, c, x, noise, sigma, y);
    }

    /// <summary>
    /// The inpaint blend after a step, in place: latents = (1 − m)·(σ·noise + (1 − σ)·image) + m·latents with the mask
    /// m <c>[plane]</c> broadcast over the channels of latents/image/noise <c>[C, plane]</c> (1 = repaint, 0 = keep).
    /// </summary>
    /// <param name="latents">Denoised latents, overwritten with the blend.</param>
    /// <param name="image">Clean image latents.</param>
    /// <param name="noise">The run's noise.</param>
    /// <param name="mask">Latent-resolution mask.</param>
    /// <param name="sigma">σ of the next step (0 after the last step: the kept region becomes the clean image).</param>
    public void MaskBlend(ArrayView<float> latents, ArrayView<float> image, ArrayView<float> noise, ArrayView<float> mask, float sigma)
    {
        long n = latents.Length, plane = mask.Length;
        ElementwiseChecks.Positive(plane, nameof(mask));
        if (n == 0 || n % plane != 0)
            throw new ArgumentException($"latents ({n} values) must be whole channels of the mask's {plane} positions.", nameof(latents));
        ElementwiseChecks.Length(image, n, nameof(image));
        ElementwiseChecks.Length(noise, n, nameof(noise));
        var c = ElementwiseChunks.For(_ctx, n, "latent elements");
        _blend(_ctx.Stream, c.Threads, c, (int)plane, latents, image, noise, mask, sigma);
    }

    private (DownConvArgs, ElementwiseChunks) CheckDown<TW>(ArrayView<float> x, ArrayView<TW> weight, ArrayView<float> bias, ArrayView<float> y, int cin, int cout, int height, int width)
        where TW : unmanaged
    {
        ElementwiseChecks.Positive(cin, nameof(cin));
        ElementwiseChecks.Positive(cout, nameof(cout));
        if (height < 2) throw new ArgumentOutOfRangeException(nameof(height), height, "height must be ≥ 2 for a stride-2 3×3 conv.");
        if (width < 2) throw new ArgumentOutOfRangeException(nameof(width), width, "width must be ≥ 2 for a stride-2 3×3 conv.");
        int oh = DownsampledSize(height), ow = DownsampledSize(width);
        ElementwiseChecks.Count((long)cin * height * width, "cin*height*width");
        ElementwiseChecks.Count((long)cout * oh * ow, "cout*outHeight*outWidth");
        ElementwiseChecks.Count((long)cout * cin * 9, "cout*cin*9");
        ElementwiseChecks.Length(x, (long)cin * height * width, nameof(x));
        ElementwiseChecks.Length(weight, (long)cout * cin * 9, nameof(weight));
        ElementwiseChecks.OptionalLength(bias, cout, nameof(bias));
        ElementwiseChecks.Length(y, (long)cout * oh * ow, nameof(y));
        var p = new DownConvArgs(cin, cout, height, width, oh, ow, bias.Length > 0 ? 1 : 0);
        return (p, ElementwiseChunks.For(_ctx, (long)cout * oh * ow, "cout*outHeight*outWidth"));
    }

    private static void DownConvKernel<TW, TR>(Index1D t, ElementwiseChunks c, DownConvArgs p, ArrayView<float> x, ArrayView<TW> w, ArrayView<float> bias, ArrayView<float> y)
        where TW : unmanaged
        where TR : struct, IConvWeight<TW>
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        TR widen = default;
        int outPlane = p.OutH * p.OutW, inPlane = p.H * p.W;
        for (int u = first; u < last; u += c.Step)
        {
            int co = u / outPlane;
            int r = u - co * outPlane;
            int oy = r / p.OutW;
            int ox = r - oy * p.OutW;
            int iy0 = 2 * oy, ix0 = 2 * ox;
            float acc = p.HasBias != 0 ? bias[co] : 0f;
            for (int ci = 0; ci < p.Cin; ci++)
            {
                int wb = (co * p.Cin + ci) * 9;
                int xb = ci * inPlane;
                for (int dy = 0; dy < 3; dy++)
                {
                    int iy = iy0 + dy;
                    if (iy >= p.H) break; // the bottom pad row is zero
                    int row = xb + iy * p.W;
                    for (int dx = 0; dx < 3; dx++)
                    {
                        int ix = ix0 + dx;
                        if (ix >= p.W) break; // the right pad column is zero
                        acc += widen.Widen(w[wb + dy * 3 + dx]) * x[row + ix];
                    }
                }
            }
            y[u] = acc;
        }
    }

    private static void PosteriorKernel(Index1D t, ElementwiseChunks c, int n, ArrayView<float> moments, ArrayView<float> eps, float scale, float shift, int flags,
        ArrayView<float> y, ArrayView<float> std)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            float mean = moments[i];
            float logvar = moments[n + i];
            logvar = logvar < -30f ? -30f : logvar > 20f ? 20f : logvar;
            float s = MathF.Exp(0.5f * logvar);
            float z = (flags & 1) != 0 ? mean + s * eps[i] : mean;
            y[i] = (z - shift) * scale;
            if ((flags & 2) != 0) std[i] = s;
        }
    }

    private static void ScaleNoiseKernel(Index1D t, ElementwiseChunks c, ArrayView<float> x, ArrayView<float> noise, float sigma, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        float keep = 1f - sigma;
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = sigma * noise[i] + keep * x[i];
        }
    }

    private static void BlendKernel(Index1D t, ElementwiseChunks c, int plane, ArrayView<float> latents, ArrayView<float> image, ArrayView<float> noise, ArrayView<float> mask, float sigma)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        float keep = 1f - sigma;
        for (int i = first; i < last; i += c.Step)
        {
            float m = mask[i % plane];
            float proper = sigma * noise[i] + keep * image[i];
            latents[i] = (1f - m) * proper + m * latents[i];
        }
    }
}

/// <summary>Shape of a downsample-conv launch.</summary>
internal readonly struct DownConvArgs
{
    public readonly int Cin;
    public readonly int Cout;
    public readonly int H;
    public readonly int W;
    public readonly int OutH;
    public readonly int OutW;
    public readonly int HasBias;

    public DownConvArgs(int cin, int cout, int h, int w, int outH, int outW, int hasBias)
    {
        Cin = cin;
        Cout = cout;
        H = h;
        W = w;
        OutH = outH;
        OutW = outW;
        HasBias = hasBias;
    }
}
