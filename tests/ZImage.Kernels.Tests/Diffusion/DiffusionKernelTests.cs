using ZImage.Kernels.Tests.Infrastructure;
using static ZImage.Kernels.Tests.Infrastructure.NormConvTestData;

namespace ZImage.Kernels.Tests.Diffusion;

[Collection(NormConvCollection.Name)]
public sealed class DiffusionKernelTests(NormConvFixture fx)
{
    private static readonly TheoryData<int, int, int> LatentShapes = new() { { 1, 2, 2 }, { 3, 4, 6 }, { 16, 6, 2 } };

    public static TheoryData<KernelBackend, int, int, int> Latents() => KernelBackends.Matrix(LatentShapes, LatentShapes);

    public static TheoryData<KernelBackend, int> EulerLengths() => KernelBackends.Matrix(new TheoryData<int>(7, 130), new TheoryData<int>(33));

    public static TheoryData<KernelBackend, int, float, float> CfgCases() => KernelBackends.Matrix(
        new TheoryData<int, float, float> { { 1, 0f, 0f }, { 33, 4f, 0f }, { 130, 4f, 1f }, { 1000, 3f, 1.5f } },
        new TheoryData<int, float, float> { { 37, 4f, 1f }, { 7, 0.5f, 100f } });

    public static TheoryData<KernelBackend> EveryBackend() => KernelBackends.All();

    public static TheoryData<KernelBackend, int, int, int> PreviewShapes() => KernelBackends.Matrix(
        new TheoryData<int, int, int> { { 16, 3, 5 }, { 4, 1, 1 } }, new TheoryData<int, int, int> { { 16, 2, 3 } });

    [Theory]
    [MemberData(nameof(Latents))]
    public void PatchifyUsesPhPwCFeatureOrderAndUnpatchifyInvertsIt(KernelBackend backend, int c, int hl, int wl)
    {
        var acc = fx.For(backend).Accelerator;
        int n = c * hl * wl, wt = wl / 2, ni = (hl / 2) * wt, features = 4 * c;
        var z = Random(n, n);
        var expected = new double[n];
        for (int h = 0; h < hl / 2; h++)
        {
            for (int w = 0; w < wt; w++)
            {
                for (int ph = 0; ph < 2; ph++)
                {
                    for (int pw = 0; pw < 2; pw++)
                    {
                        for (int ch = 0; ch < c; ch++)
                        {
                            expected[(h * wt + w) * features + (ph * 2 + pw) * c + ch] = z[(ch * hl + 2 * h + ph) * wl + 2 * w + pw];
                        }
                    }
                }
            }
        }

        // Two extra (padding) token rows that unpatchify must ignore.
        var tokens0 = Poison((ni + 2) * features);
        using var bz = Upload(acc, z);
        using var bt = Upload(acc, tokens0);
        using var bo = Upload(acc, Poison(n));
        fx.Diffusion(backend).Patchify(bz.View, bt.View, c, hl, wl);
        var tokens = Download(acc, bt);
        AssertClose(expected, tokens[..n], atol: 0, rtol: 0, what: "patchify");
        Assert.All(tokens[n..], v => Assert.True(float.IsNaN(v)));

        fx.Diffusion(backend).Unpatchify(bt.View, bo.View, c, hl, wl);
        AssertClose(Widen(z), Download(acc, bo), atol: 0, rtol: 0, what: "unpatchify");
    }

    [Theory]
    [MemberData(nameof(EulerLengths))]
    public void EulerStepAddsDtTimesNegatedOutputAndDenormalizeDivides(KernelBackend backend, int n)
    {
        var acc = fx.For(backend).Accelerator;
        var z = Random(n, n);
        var o = Random(n + 1, n);
        const float dt = -0.0454546f;
        using var bz = Upload(acc, z);
        using var bo = Upload(acc, o);
        using var by = Upload(acc, Poison(n));
        fx.Diffusion(backend).EulerStep(bz.View, bo.View, dt, n);
        var stepped = Download(acc, bz);
        for (int i = 0; i < n; i++) Assert.Equal(z[i] + dt * -o[i], stepped[i]);

        fx.Diffusion(backend).DenormalizeLatents(bz.View, 0.3611f, 0.1159f, by.View, n);
        var denorm = Download(acc, by);
        for (int i = 0; i < n; i++) Assert.Equal(stepped[i] / 0.3611f + 0.1159f, denorm[i]);
    }

    [Theory]
    [MemberData(nameof(CfgCases))]
    public void CfgCombineMatchesReferenceAndRenormalises(KernelBackend backend, int n, float g, float cfgNorm)
    {
        var acc = fx.For(backend).Accelerator;
        var pos = Random(n + 10, n);
        var neg = Random(n + 11, n);
        var expected = new double[n];
        double predSq = 0, posSq = 0;
        for (int i = 0; i < n; i++)
        {
            expected[i] = pos[i] + (double)g * (pos[i] - neg[i]);
            predSq += expected[i] * expected[i];
            posSq += (double)pos[i] * pos[i];
        }

        double limit = Math.Sqrt(posSq) * cfgNorm;
        bool renorm = cfgNorm > 0 && Math.Sqrt(predSq) > limit;
        if (renorm)
        {
            double f = limit / Math.Sqrt(predSq);
            for (int i = 0; i < n; i++) expected[i] *= f;
        }

        using var bp = Upload(acc, pos);
        using var bn = Upload(acc, neg);
        using var bo = Upload(acc, Poison(n));
        fx.Diffusion(backend).CfgCombine(bp.View, bn.View, g, cfgNorm, bo.View, n);
        var first = Download(acc, bo);
        AssertClose(expected, first, atol: 1e-5, rtol: 1e-5);

        // Deterministic: a rerun is bitwise identical.
        using var bo2 = Upload(acc, Poison(n));
        fx.Diffusion(backend).CfgCombine(bp.View, bn.View, g, cfgNorm, bo2.View, n);
        Assert.Equal(first, Download(acc, bo2));
    }

    [Fact]
    public void CfgRenormalisationCapsThePredictionNorm()
    {
        const int n = 64;
        var acc = fx.Portable.Accelerator;
        var pos = Random(3, n);
        var neg = Random(4, n);
        using var bp = Upload(acc, pos);
        using var bn = Upload(acc, neg);
        using var bo = Upload(acc, Poison(n));
        fx.Diffusion(false).CfgCombine(bp.View, bn.View, 5f, 1f, bo.View, n);
        double posNorm = Math.Sqrt(pos.Sum(v => (double)v * v));
        double predNorm = Math.Sqrt(Download(acc, bo).Sum(v => (double)v * v));
        Assert.Equal(posNorm, predNorm, 1e-4);
    }

    private static byte ExpectedByte(float x)
    {
        float v = x * 0.5f + 0.5f;
        v = float.IsNaN(v) ? 0f : Math.Clamp(v, 0f, 1f);
        return (byte)MathF.Round(v * 255f, MidpointRounding.ToEven);
    }

    /// <summary>Inputs whose fp32 value x·0.5+0.5 times 255 lands exactly on k + 0.5, to pin round-half-to-even.</summary>
    private static List<float> Midpoints()
    {
        var found = new List<float>();
        for (int k = 0; k < 255; k++)
        {
            float x = (float)(2.0 * (k + 0.5) / 255.0 - 1.0);
            for (int d = -64; d <= 64; d++)
            {
                float c = x;
                for (int s = 0; s < Math.Abs(d); s++) c = d > 0 ? MathF.BitIncrement(c) : MathF.BitDecrement(c);
                float scaled = (c * 0.5f + 0.5f) * 255f;
                if (scaled - MathF.Floor(scaled) == 0.5f)
                {
                    found.Add(c);
                    break;
                }
            }
        }

        return found;
    }

    [Theory]
    [MemberData(nameof(EveryBackend))]
    public void ImageToRgb8ClampsAndRoundsHalfToEven(KernelBackend backend)
    {
        var acc = fx.For(backend).Accelerator;
        var mids = Midpoints();
        Assert.True(mids.Count >= 20, $"only {mids.Count} midpoint inputs found");
        var special = new List<float> { -1f, 1f, 0f, -2f, 3f, float.NaN, float.PositiveInfinity, float.NegativeInfinity };
        var values = mids.Concat(special).Concat(Random(9, 60, 1.2f)).ToList();
        int w = 5, h = (values.Count + 3 * w - 1) / (3 * w);
        while (values.Count < 3 * h * w) values.Add(0.25f);
        var image = values.ToArray();
        using var bi = Upload(acc, image);
        using var bo = Upload(acc, Enumerable.Repeat((byte)77, 3 * h * w + 5).ToArray());
        fx.Diffusion(backend).ImageToRgb8(bi.View, bo.View, h, w);
        var rgb = Download(acc, bo);
        int pixels = h * w;
        for (int p = 0; p < pixels; p++)
        {
            for (int ch = 0; ch < 3; ch++)
            {
                Assert.True(ExpectedByte(image[ch * pixels + p]) == rgb[3 * p + ch], $"pixel {p} channel {ch}: x = {image[ch * pixels + p]:R}");
            }
        }

        Assert.All(rgb[(3 * pixels)..], b => Assert.Equal(77, b));
    }

    [Theory]
    [MemberData(nameof(PreviewShapes))]
    public void LatentPreviewProjectsChannelsToRgb(KernelBackend backend, int c, int h, int w)
    {
        var acc = fx.For(backend).Accelerator;
        int pixels = h * w;
        var z = Random(c + h, c * pixels);
        var proj = Random(c + 1, 3 * c, 0.3f);
        var bias = Random(c + 2, 3, 0.1f);
        using var bz = Upload(acc, z);
        using var bp = Upload(acc, proj);
        using var bb = Upload(acc, bias);
        using var bo = Upload(acc, new byte[3 * pixels]);
        fx.Diffusion(backend).LatentPreview(bz.View, bp.View, bb.View, bo.View, c, h, w);
        var rgb = Download(acc, bo);
        for (int p = 0; p < pixels; p++)
        {
            for (int k = 0; k < 3; k++)
            {
                double v = bias[k];
                for (int ch = 0; ch < c; ch++) v += (double)z[ch * pixels + p] * proj[3 * ch + k];
                double expected = Math.Round(Math.Clamp(v * 0.5 + 0.5, 0, 1) * 255);
                // fp32 accumulation may land on the other side of a rounding boundary.
                Assert.InRange(rgb[3 * p + k], expected - 1, expected + 1);
            }
        }
    }

    [Fact]
    public void RejectsOddLatentSizes()
    {
        using var b = fx.Cpu.Allocate1D<float>(64);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => fx.Diffusion(false).Patchify(b.View, b.View, 1, 3, 4));
        Assert.Equal("height", ex.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => fx.Diffusion(false).Unpatchify(b.View, b.View, 1, 4, 0));
    }
}
