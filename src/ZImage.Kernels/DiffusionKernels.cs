using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>
/// The sampler-side kernels around the DiT and the VAE: patchify / unpatchify (p = 2, f = 1), the flow-matching
/// Euler step, classifier-free guidance with optional renormalisation (a deterministic two-launch reduction), latent
/// denormalisation for the VAE, conversion of the decoded image to RGB8, and a cheap latent preview. All chunked (see
/// <see cref="KernelVariant"/>). Owns a small fp64 scratch buffer for the CFG norms, hence <see cref="IDisposable"/>.
/// </summary>
public sealed class DiffusionKernels : IDisposable
{
    /// <summary>Patch size of Z-Image (pH = pW = 2).</summary>
    public const int PatchSize = 2;

    private const int MaxGpuSlots = 1024;

    private readonly KernelContext _ctx;
    private readonly MemoryBuffer1D<double, Stride1D.Dense> _scratch;
    private readonly int _slots;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, DiffusionPatchArgs, ArrayView<float>, ArrayView<float>> _patchify;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, DiffusionPatchArgs, ArrayView<float>, ArrayView<float>> _unpatchify;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, float> _euler;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, float, float, ArrayView<float>> _denorm;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, float, int, ArrayView<float>, ArrayView<double>> _cfg;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, float, ArrayView<float>, ArrayView<double>> _cfgRenorm;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<byte>> _rgb8;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<byte>> _preview;

    /// <summary>Loads (compiles) the kernels and allocates the CFG reduction scratch (a few KiB) on the accelerator.</summary>
    /// <param name="context">Accelerator and resolved variant.</param>
    public DiffusionKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator a = context.Accelerator;
        _slots = context.Variant == KernelVariant.Portable ? Math.Max(1, context.PortableChunks) : MaxGpuSlots;
        _scratch = a.Allocate1D<double>(2 * _slots);
        _patchify = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, DiffusionPatchArgs, ArrayView<float>, ArrayView<float>>(PatchifyKernel);
        _unpatchify = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, DiffusionPatchArgs, ArrayView<float>, ArrayView<float>>(UnpatchifyKernel);
        _euler = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, float>(EulerKernel);
        _denorm = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, float, float, ArrayView<float>>(DenormalizeKernel);
        _cfg = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, ArrayView<float>, ArrayView<float>, float, int, ArrayView<float>, ArrayView<double>>(CfgKernel);
        _cfgRenorm = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, float, ArrayView<float>, ArrayView<double>>(CfgRenormKernel);
        _rgb8 = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<byte>>(Rgb8Kernel);
        _preview = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<byte>>(PreviewKernel);
    }

    /// <summary>The context the kernels were loaded on.</summary>
    public KernelContext Context => _ctx;

    /// <summary>
    /// Patchify latents z[C, Hl, Wl] into tokens X[Ni, 4C], Ni = (Hl/2)(Wl/2):
    /// X[h·Wt + w][(ph·2 + pw)·C + c] = z[c, 2h+ph, 2w+pw] (feature order (ph, pw, c), c fastest; tokens row-major).
    /// Only the Ni rows are written; padding rows up to a multiple of 32 are the caller's (see
    /// <see cref="ElementwiseKernels.CopyRows"/> / <see cref="ElementwiseKernels.FillRows"/>).
    /// </summary>
    /// <param name="latents">z [channels, height, width].</param>
    /// <param name="tokens">X [Ni, 4·channels].</param>
    /// <param name="channels">Latent channels C (≥ 1).</param>
    /// <param name="height">Latent height Hl (even, ≥ 2).</param>
    /// <param name="width">Latent width Wl (even, ≥ 2).</param>
    public void Patchify(ArrayView<float> latents, ArrayView<float> tokens, int channels, int height, int width)
    {
        var p = PatchArgs(channels, height, width);
        ElementwiseChecks.Length(latents, p.Count, nameof(latents));
        ElementwiseChecks.Length(tokens, p.Count, nameof(tokens));
        var c = ElementwiseChunks.For(_ctx, p.Count, "channels*height*width");
        _patchify(_ctx.Stream, c.Threads, c, p, latents, tokens);
    }

    /// <summary>
    /// Unpatchify the first Ni rows of the final-layer output O[S, 4C] (S ≥ Ni; rows past Ni are padding and ignored)
    /// into out[C, Hl, Wl]: out[c, 2h+ph, 2w+pw] = O[h·Wt + w][(ph·2 + pw)·C + c].
    /// </summary>
    /// <param name="tokens">O [≥ Ni, 4·channels].</param>
    /// <param name="output">out [channels, height, width].</param>
    /// <param name="channels">Latent channels C (≥ 1).</param>
    /// <param name="height">Latent height Hl (even, ≥ 2).</param>
    /// <param name="width">Latent width Wl (even, ≥ 2).</param>
    public void Unpatchify(ArrayView<float> tokens, ArrayView<float> output, int channels, int height, int width)
    {
        var p = PatchArgs(channels, height, width);
        ElementwiseChecks.Length(tokens, p.Count, nameof(tokens));
        ElementwiseChecks.Length(output, p.Count, nameof(output));
        var c = ElementwiseChunks.For(_ctx, p.Count, "channels*height*width");
        _unpatchify(_ctx.Stream, c.Threads, c, p, tokens, output);
    }

    /// <summary>
    /// Flow-matching Euler step in place: latents += dt·v with v = −modelOutput (the pipeline negates the DiT output),
    /// dt = σ_next − σ. Pass the raw DiT output, or the CFG <c>pred</c> from <see cref="CfgCombine"/>.
    /// </summary>
    /// <param name="latents">z, updated in place (n elements).</param>
    /// <param name="modelOutput">DiT output (or CFG pred), n elements.</param>
    /// <param name="dt">σ_{i+1} − σ_i (finite).</param>
    /// <param name="n">Element count.</param>
    public void EulerStep(ArrayView<float> latents, ArrayView<float> modelOutput, float dt, long n)
    {
        ElementwiseChecks.Finite(dt, nameof(dt));
        Check2(latents, modelOutput, n);
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _euler(_ctx.Stream, c.Threads, c, latents, modelOutput, dt);
    }

    /// <summary>
    /// The VAE input transform y = latents / scalingFactor + shiftFactor (division, not a reciprocal multiply, to match
    /// torch bit for bit). latents and y may alias.
    /// </summary>
    /// <param name="latents">Final latents, n elements.</param>
    /// <param name="scalingFactor">VAE scaling factor (0.3611 for Z-Image); finite and non-zero.</param>
    /// <param name="shiftFactor">VAE shift factor (0.1159 for Z-Image); finite.</param>
    /// <param name="y">Output, n elements.</param>
    /// <param name="n">Element count.</param>
    public void DenormalizeLatents(ArrayView<float> latents, float scalingFactor, float shiftFactor, ArrayView<float> y, long n)
    {
        if (!float.IsFinite(scalingFactor) || scalingFactor == 0f)
        {
            throw new ArgumentOutOfRangeException(nameof(scalingFactor), scalingFactor, "scalingFactor must be finite and non-zero.");
        }

        ElementwiseChecks.Finite(shiftFactor, nameof(shiftFactor));
        Check2(latents, y, n);
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(n));
        _denorm(_ctx.Stream, c.Threads, c, latents, scalingFactor, shiftFactor, y);
    }

    /// <summary>
    /// Classifier-free guidance on the model outputs: pred = pos + guidance·(pos − neg). If
    /// <paramref name="cfgNormalization"/> &gt; 0 and ‖pred‖₂ &gt; ‖pos‖₂·cfgNormalization (norms over all n elements),
    /// pred is scaled by ‖pos‖₂·cfgNormalization/‖pred‖₂. Writes <b>pred</b> in the model-output convention (not v):
    /// feed it to <see cref="EulerStep"/>, which applies v = −pred. The norms are fp64 sums over a fixed partition
    /// combined in a fixed order, so the result is bitwise reproducible on a given device. pred may alias pos or neg.
    /// </summary>
    /// <param name="pos">Positive-prompt output, n elements.</param>
    /// <param name="neg">Negative-prompt output, n elements.</param>
    /// <param name="guidance">Guidance scale g (finite; 0 gives pos).</param>
    /// <param name="cfgNormalization">Renormalisation threshold; ≤ 0 disables it (finite).</param>
    /// <param name="pred">Output, n elements.</param>
    /// <param name="n">Element count.</param>
    public void CfgCombine(ArrayView<float> pos, ArrayView<float> neg, float guidance, float cfgNormalization, ArrayView<float> pred, long n)
    {
        ElementwiseChecks.Finite(guidance, nameof(guidance));
        ElementwiseChecks.Finite(cfgNormalization, nameof(cfgNormalization));
        Check2(pos, pred, n);
        ElementwiseChecks.Length(neg, n, nameof(neg));
        if (n == 0) return;
        bool renorm = cfgNormalization > 0f;
        ElementwiseChunks c = renorm
            ? ElementwiseChunks.WithThreads(_ctx, (int)n, (int)Math.Min(_slots, n))
            : ElementwiseChunks.For(_ctx, n, nameof(n));
        _cfg(_ctx.Stream, c.Threads, c, pos, neg, guidance, renorm ? 1 : 0, pred, _scratch.View);
        if (renorm)
        {
            _cfgRenorm(_ctx.Stream, c.Threads, c, cfgNormalization, pred, _scratch.View);
        }
    }

    /// <summary>
    /// Converts a decoded image x[3, H, W] (roughly in [−1, 1]) to interleaved RGB8 [H, W, 3]:
    /// round(clamp(x·0.5 + 0.5, 0, 1)·255) in fp32 with round-half-to-even, as numpy / torch do. NaN maps to 0.
    /// </summary>
    /// <param name="image">x [3, height, width].</param>
    /// <param name="rgb">Output bytes [height, width, 3].</param>
    /// <param name="height">Height (≥ 1).</param>
    /// <param name="width">Width (≥ 1).</param>
    public void ImageToRgb8(ArrayView<float> image, ArrayView<byte> rgb, int height, int width)
    {
        long pixels = Pixels(height, width);
        ElementwiseChecks.Length(image, 3 * pixels, nameof(image));
        ElementwiseChecks.Length(rgb, 3 * pixels, nameof(rgb));
        var c = ElementwiseChunks.For(_ctx, pixels, "height*width");
        _rgb8(_ctx.Stream, c.Threads, c, (int)pixels, image, rgb);
    }

    /// <summary>
    /// Cheap latent preview: rgb[p, k] = byte(bias[k] + Σ_c latents[c, p]·projection[c·3 + k]) at latent resolution,
    /// where byte() is the <see cref="ImageToRgb8"/> mapping (the projection is expected to land roughly in [−1, 1]).
    /// </summary>
    /// <param name="latents">z [channels, height, width].</param>
    /// <param name="projection">Linear map [channels, 3] (row-major: channel-major, RGB fastest).</param>
    /// <param name="bias">Bias [3], or an empty view for none.</param>
    /// <param name="rgb">Output bytes [height, width, 3].</param>
    /// <param name="channels">Latent channels (≥ 1; 16 for Z-Image).</param>
    /// <param name="height">Latent height (≥ 1).</param>
    /// <param name="width">Latent width (≥ 1).</param>
    public void LatentPreview(ArrayView<float> latents, ArrayView<float> projection, ArrayView<float> bias, ArrayView<byte> rgb, int channels, int height, int width)
    {
        ElementwiseChecks.Positive(channels, nameof(channels));
        long pixels = Pixels(height, width);
        ElementwiseChecks.Count(pixels * channels, "channels*height*width");
        ElementwiseChecks.Length(latents, pixels * channels, nameof(latents));
        ElementwiseChecks.Length(projection, 3L * channels, nameof(projection));
        ElementwiseChecks.OptionalLength(bias, 3, nameof(bias));
        ElementwiseChecks.Length(rgb, 3 * pixels, nameof(rgb));
        var c = ElementwiseChunks.For(_ctx, pixels, "height*width");
        _preview(_ctx.Stream, c.Threads, c, channels, latents, projection, bias, rgb);
    }

    /// <summary>Frees the CFG scratch buffer.</summary>
    public void Dispose() => _scratch.Dispose();

    private static long Pixels(int height, int width)
    {
        ElementwiseChecks.Positive(height, nameof(height));
        ElementwiseChecks.Positive(width, nameof(width));
        long pixels = (long)height * width;
        ElementwiseChecks.Count(3 * pixels, "3*height*width");
        return pixels;
    }

    private static DiffusionPatchArgs PatchArgs(int channels, int height, int width)
    {
        ElementwiseChecks.Positive(channels, nameof(channels));
        if (height < PatchSize || height % PatchSize != 0)
        {
            ElementwiseChecks.Throw(nameof(height), height, "even values ≥ 2");
        }

        if (width < PatchSize || width % PatchSize != 0)
        {
            ElementwiseChecks.Throw(nameof(width), width, "even values ≥ 2");
        }

        long count = (long)channels * height * width;
        ElementwiseChecks.Count(count, "channels*height*width");
        return new DiffusionPatchArgs(channels, height, width);
    }

    private static void Check2(ArrayView<float> a, ArrayView<float> b, long n)
    {
        ElementwiseChecks.Count(n, nameof(n));
        ElementwiseChecks.Length(a, n, nameof(a));
        ElementwiseChecks.Length(b, n, nameof(b));
    }

    internal static byte ToByte(float x)
    {
        float v = x * 0.5f + 0.5f;
        // The negated comparison also sends NaN to 0.
        if (!(v > 0f)) v = 0f;
        else if (v > 1f) v = 1f;
        float s = v * 255f;
        int i = (int)s;
        float frac = s - i;
        if (frac > 0.5f || (frac == 0.5f && (i & 1) != 0)) i++;
        return (byte)i;
    }

    private static void PatchifyKernel(Index1D t, ElementwiseChunks c, DiffusionPatchArgs p, ArrayView<float> z, ArrayView<float> tokens)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int features = 4 * p.C;
        int wt = p.W >> 1;
        for (int i = first; i < last; i += c.Step)
        {
            int n = i / features;
            int f = i - n * features;
            int sub = f / p.C;
            int ch = f - sub * p.C;
            int h = n / wt;
            int w = n - h * wt;
            tokens[i] = z[(ch * p.H + 2 * h + (sub >> 1)) * p.W + 2 * w + (sub & 1)];
        }
    }

    private static void UnpatchifyKernel(Index1D t, ElementwiseChunks c, DiffusionPatchArgs p, ArrayView<float> tokens, ArrayView<float> output)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int plane = p.H * p.W;
        int wt = p.W >> 1;
        for (int i = first; i < last; i += c.Step)
        {
            int ch = i / plane;
            int rem = i - ch * plane;
            int yy = rem / p.W;
            int xx = rem - yy * p.W;
            int n = (yy >> 1) * wt + (xx >> 1);
            int sub = ((yy & 1) << 1) | (xx & 1);
            output[i] = tokens[n * 4 * p.C + sub * p.C + ch];
        }
    }

    private static void EulerKernel(Index1D t, ElementwiseChunks c, ArrayView<float> latents, ArrayView<float> modelOutput, float dt)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            latents[i] += dt * -modelOutput[i];
        }
    }

    private static void DenormalizeKernel(Index1D t, ElementwiseChunks c, ArrayView<float> latents, float scaling, float shift, ArrayView<float> y)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            y[i] = latents[i] / scaling + shift;
        }
    }

    private static void CfgKernel(Index1D t, ElementwiseChunks c, ArrayView<float> pos, ArrayView<float> neg, float g, int renorm, ArrayView<float> pred, ArrayView<double> partials)
    {
        int first = c.First(t);
        double sumPred = 0.0, sumPos = 0.0;
        if (first < c.N)
        {
            int last = c.Last(first);
            for (int i = first; i < last; i += c.Step)
            {
                float pv = pos[i];
                float v = pv + g * (pv - neg[i]);
                pred[i] = v;
                sumPred += (double)v * v;
                sumPos += (double)pv * pv;
            }
        }

        if (renorm != 0)
        {
            // Every slot is written (zero when empty) so the combine never reads stale values.
            partials[t] = sumPred;
            partials[c.Threads + t] = sumPos;
        }
    }

    private static void CfgRenormKernel(Index1D t, ElementwiseChunks c, float threshold, ArrayView<float> pred, ArrayView<double> partials)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        // Each thread combines the same partials in the same order, so all agree on the factor and reruns match.
        double sumPred = 0.0, sumPos = 0.0;
        for (int s = 0; s < c.Threads; s++)
        {
            sumPred += partials[s];
            sumPos += partials[c.Threads + s];
        }

        float predNorm = (float)Math.Sqrt(sumPred);
        float maxNorm = (float)Math.Sqrt(sumPos) * threshold;
        if (!(predNorm > maxNorm)) return;
        float factor = maxNorm / predNorm;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            pred[i] *= factor;
        }
    }

    private static void Rgb8Kernel(Index1D t, ElementwiseChunks c, int pixels, ArrayView<float> image, ArrayView<byte> rgb)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        for (int i = first; i < last; i += c.Step)
        {
            rgb[3 * i] = ToByte(image[i]);
            rgb[3 * i + 1] = ToByte(image[pixels + i]);
            rgb[3 * i + 2] = ToByte(image[2 * pixels + i]);
        }
    }

    private static void PreviewKernel(Index1D t, ElementwiseChunks c, int channels, ArrayView<float> z, ArrayView<float> proj, ArrayView<float> bias, ArrayView<byte> rgb)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int pixels = c.N;
        bool hasBias = bias.Length > 0;
        for (int i = first; i < last; i += c.Step)
        {
            float r = hasBias ? bias[0] : 0f, g = hasBias ? bias[1] : 0f, b = hasBias ? bias[2] : 0f;
            for (int ch = 0; ch < channels; ch++)
            {
                float v = z[ch * pixels + i];
                r += v * proj[3 * ch];
                g += v * proj[3 * ch + 1];
                b += v * proj[3 * ch + 2];
            }

            rgb[3 * i] = ToByte(r);
            rgb[3 * i + 1] = ToByte(g);
            rgb[3 * i + 2] = ToByte(b);
        }
    }
}

/// <summary>Latent shape for patchify / unpatchify.</summary>
internal readonly struct DiffusionPatchArgs
{
    public readonly int C;
    public readonly int H;
    public readonly int W;

    public DiffusionPatchArgs(int c, int h, int w)
    {
        C = c;
        H = h;
        W = w;
    }

    public long Count => (long)C * H * W;
}
