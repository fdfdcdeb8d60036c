using ZImage.Kernels.Tests.Infrastructure;
using static ZImage.Kernels.Tests.Infrastructure.NormConvTestData;
using IlgpuHalf = ILGPU.Half;

namespace ZImage.Kernels.Tests.Conv;

[Collection(NormConvCollection.Name)]
public sealed class ConvKernelTests(NormConvFixture fx)
{
    public enum WeightType { F32, F16, Bf16 }

    public static TheoryData<WeightType, int, int, int, int, int, bool> Shared() => new()
    {
        // (dtype, cin, cout, h, w, k, upsample)
        { WeightType.F32, 1, 1, 1, 1, 3, false },
        { WeightType.F32, 3, 5, 5, 3, 3, false },
        { WeightType.F32, 9, 5, 8, 5, 3, false },
        { WeightType.F32, 3, 2, 3, 8, 1, false },
        { WeightType.F16, 4, 3, 5, 5, 3, false },
        { WeightType.Bf16, 3, 5, 3, 5, 3, false },
        { WeightType.F32, 3, 5, 3, 5, 3, true },
        { WeightType.Bf16, 2, 3, 1, 3, 3, true },
        { WeightType.F16, 5, 2, 3, 3, 1, true },
    };

    public static TheoryData<KernelBackend, WeightType, int, int, int, int, int, bool> Cases()
    {
        var portable = Shared();
        // Portable only among the CPU backends (larger than the simulated GPU can afford): several row chunks per output channel.
        portable.Add(WeightType.F32, 6, 7, 33, 21, 3, false);
        portable.Add(WeightType.Bf16, 5, 4, 9, 7, 3, true);
        return KernelBackends.Matrix(portable, Shared());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ConvMatchesReference(KernelBackend backend, WeightType type, int cin, int cout, int h, int w, int k, bool upsample)
    {
        var acc = fx.For(backend).Accelerator;
        var x = Random(cin * 100 + h * 10 + w, cin * h * w, 2f);
        var wf = Random(cout * 7 + k, cout * cin * k * k, 0.5f);
        var bias = Random(cout + 3, cout);
        // Round the weights to the stored dtype so the fp64 reference sees exactly what the kernel widens.
        ushort[] bf = Array.ConvertAll(wf, v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16));
        float[] wRef = type switch
        {
            WeightType.F16 => Array.ConvertAll(wf, v => (float)(System.Half)v),
            WeightType.Bf16 => Array.ConvertAll(bf, b => BitConverter.UInt32BitsToSingle((uint)b << 16)),
            _ => wf,
        };
        int up = upsample ? 2 : 1, oh = h * up, ow = w * up, pad = k / 2;
        var expected = new double[cout * oh * ow];
        for (int co = 0; co < cout; co++)
        {
            for (int oy = 0; oy < oh; oy++)
            {
                for (int ox = 0; ox < ow; ox++)
                {
                    double s = bias[co];
                    for (int ci = 0; ci < cin; ci++)
                    {
                        for (int ky = 0; ky < k; ky++)
                        {
                            for (int kx = 0; kx < k; kx++)
                            {
                                int iy = oy + ky - pad, ix = ox + kx - pad;
                                if (iy < 0 || iy >= oh || ix < 0 || ix >= ow) continue;
                                s += (double)wRef[((co * cin + ci) * k + ky) * k + kx] * x[(ci * h + iy / up) * w + ix / up];
                            }
                        }
                    }

                    expected[(co * oh + oy) * ow + ox] = s;
                }
            }
        }

        using var bx = Upload(acc, x);
        using var bb = Upload(acc, bias);
        using var by = Upload(acc, Poison(expected.Length));
        var conv = fx.Conv(backend);
        switch (type)
        {
            case WeightType.F32:
                using (var bw = Upload(acc, wf)) conv.Conv2d(bx.View, bw.View, bb.View, by.View, cin, cout, h, w, k, upsample);
                break;
            case WeightType.F16:
                using (var bw = Upload(acc, Array.ConvertAll(wRef, v => (IlgpuHalf)v))) conv.Conv2d(bx.View, bw.View, bb.View, by.View, cin, cout, h, w, k, upsample);
                break;
            default:
                using (var bw = Upload(acc, bf)) conv.Conv2dBf16(bx.View, bw.View, bb.View, by.View, cin, cout, h, w, k, upsample);
                break;
        }

        AssertClose(expected, Download(acc, by), atol: 1e-4, rtol: 1e-5);
    }

    [Theory]
    [MemberData(nameof(KernelBackends.All), MemberType = typeof(KernelBackends))]
    public void ConvWithoutBiasMatchesReference(KernelBackend backend)
    {
        const int cin = 2, cout = 3, h = 3, w = 4;
        var acc = fx.For(backend).Accelerator;
        var x = Random(1, cin * h * w);
        var wf = Random(2, cout * cin);
        var expected = new double[cout * h * w];
        for (int co = 0; co < cout; co++)
        {
            for (int p = 0; p < h * w; p++)
            {
                for (int ci = 0; ci < cin; ci++) expected[co * h * w + p] += (double)wf[co * cin + ci] * x[ci * h * w + p];
            }
        }

        using var bx = Upload(acc, x);
        using var bw = Upload(acc, wf);
        using var by = Upload(acc, Poison(expected.Length));
        fx.Conv(backend).Conv2d(bx.View, bw.View, default, by.View, cin, cout, h, w, 1);
        AssertClose(expected, Download(acc, by), atol: 1e-5);
    }

    public static TheoryData<KernelBackend, int, int, int> UpsampleCases() => KernelBackends.Matrix(
        new TheoryData<int, int, int> { { 1, 1, 1 }, { 3, 5, 3 } },
        new TheoryData<int, int, int> { { 2, 3, 5 }, { 1, 8, 1 } });

    [Theory]
    [MemberData(nameof(UpsampleCases))]
    public void UpsampleNearest2xRepeatsEachPixel(KernelBackend backend, int channels, int h, int w)
    {
        var acc = fx.For(backend).Accelerator;
        var x = Random(h * w, channels * h * w);
        var expected = new double[channels * 4 * h * w];
        for (int c = 0; c < channels; c++)
        {
            for (int oy = 0; oy < 2 * h; oy++)
            {
                for (int ox = 0; ox < 2 * w; ox++) expected[(c * 2 * h + oy) * 2 * w + ox] = x[(c * h + oy / 2) * w + ox / 2];
            }
        }

        using var bx = Upload(acc, x);
        using var by = Upload(acc, Poison(expected.Length));
        fx.Conv(backend).UpsampleNearest2x(bx.View, by.View, channels, h, w);
        AssertClose(expected, Download(acc, by), atol: 0, rtol: 0);
    }

    [Fact]
    public void RejectsUnsupportedKernelSizeAndShortViews()
    {
        using var b = fx.Cpu.Allocate1D<float>(64);
        var conv = fx.Conv(false);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => conv.Conv2d(b.View, b.View, default, b.View, 1, 1, 2, 2, 5));
        Assert.Equal("kernelSize", ex.ParamName);
        Assert.Throws<ArgumentException>(() => conv.Conv2d(b.View, b.View, default, b.View, 4, 4, 4, 4, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => conv.Conv2d(b.View, b.View, default, b.View, 0, 1, 2, 2, 3));
    }
}
