using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Quant;

/// <summary>
/// 8-bit weight GEMMs (int8 symmetric and fp8 e4m3fn, per-output-channel scale) on both variants against a float64
/// reference over the dequantized weights: fresh random inputs, poisoned outputs, shapes that are multiples of no
/// tile. The quantizers round to nearest even and their decode is exact.
/// </summary>
[Collection(GemmAcceleratorCollection.Name)]
public sealed class QuantGemmTests(GemmAcceleratorFixture fx)
{
    public static TheoryData<KernelBackend, int, int, int, bool, bool> Cases()
    {
        var portable = new TheoryData<int, int, int, bool, bool>();
        var gpu = new TheoryData<int, int, int, bool, bool>();
        foreach (bool fp8 in new[] { false, true })
        {
            foreach (int[] s in new[] { new[] { 1, 1, 1 }, new[] { 7, 65, 70 }, new[] { 33, 3, 5 }, new[] { 70, 131, 33 } })
            {
                portable.Add(s[0], s[1], s[2], fp8, true);
                portable.Add(s[0], s[1], s[2], fp8, false);
            }
            gpu.Add(7, 65, 70, fp8, true);
            gpu.Add(33, 3, 5, fp8, false);
        }
        return KernelBackends.Matrix(portable, gpu);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64ReferenceOfTheDequantizedWeights(KernelBackend backend, int m, int n, int k, bool fp8, bool withBias)
    {
        var rng = new Random(m * 7919 + n * 31 + k + (fp8 ? 1 : 0) + (backend == KernelBackend.CpuPortable ? 0 : 2));
        float[] x = GemmReference.Random(rng, m * k);
        float[] w = GemmReference.Random(rng, n * k, 3f);
        w[0] = 0; // a zero weight and (for n > 1) a zero row exercise the zero-scale path
        if (n > 1) Array.Clear(w, k, k);
        float[]? b = withBias ? GemmReference.Random(rng, n) : null;
        var ctx = fx.For(backend);
        var kernels = new QuantGemmKernels(ctx);
        var acc = ctx.Accelerator;

        var scales = new float[n];
        float[] deq = new float[n * k];
        using var xb = GemmAcceleratorFixture.Upload(acc, x);
        using var yb = GemmAcceleratorFixture.Poisoned(acc, m * n);
        using var bb = GemmAcceleratorFixture.Upload(acc, b ?? new float[1]);
        ArrayView<float> biasView = withBias ? bb.View : default;
        if (fp8)
        {
            var q = new byte[n * k];
            Quant8.QuantizeFp8E4M3(w, n, k, q, scales);
            for (int i = 0; i < deq.Length; i++) deq[i] = Quant8.Fp8E4M3ToFloat(q[i]) * scales[i / k];
            using var qb = GemmAcceleratorFixture.Upload(acc, q);
            using var sb = GemmAcceleratorFixture.Upload(acc, scales);
            kernels.LinearFp8E4M3(xb.View, qb.View, sb.View, biasView, yb.View, m, n, k);
        }
        else
        {
            var q = new sbyte[n * k];
            Quant8.QuantizeInt8(w, n, k, q, scales);
            for (int i = 0; i < deq.Length; i++) deq[i] = q[i] * scales[i / k];
            using var qb = GemmAcceleratorFixture.Upload(acc, q);
            using var sb = GemmAcceleratorFixture.Upload(acc, scales);
            kernels.LinearInt8(xb.View, qb.View, sb.View, biasView, yb.View, m, n, k);
        }
        acc.Synchronize();

        // The dequantized weights are within half a step of the originals (int8: scale/2; fp8: 2^-4 relative, 2^-10·scale absolute).
        for (int i = 0; i < w.Length; i++)
        {
            double step = fp8 ? Math.Max(Math.Abs(w[i]) / 16, scales[i / k] / 1024.0) : scales[i / k] / 2;
            Assert.True(Math.Abs(deq[i] - w[i]) <= step * 1.0001, $"weight {i}: {w[i]} dequantizes to {deq[i]}");
        }
        var (expected, magnitude) = GemmReference.Linear(x, deq, b, m, n, k);
        GemmReference.AssertClose(expected, magnitude, yb.GetAsArray1D(), 1e-6 * Math.Sqrt(k) + 1e-7, $"{backend} {(fp8 ? "fp8" : "int8")} {m}x{n}x{k} bias={withBias}");
    }

    [Fact]
    public void Fp8DecodeIsTheE4M3FnTable()
    {
        Assert.Equal(448f, Quant8.Fp8E4M3ToFloat(0x7E));
        Assert.Equal(-448f, Quant8.Fp8E4M3ToFloat(0xFE));
        Assert.Equal(MathF.Pow(2, -6), Quant8.Fp8E4M3ToFloat(0x08));
        Assert.Equal(MathF.Pow(2, -9), Quant8.Fp8E4M3ToFloat(0x01));
        Assert.Equal(1f, Quant8.Fp8E4M3ToFloat(0x38));
        Assert.Equal(1.125f, Quant8.Fp8E4M3ToFloat(0x39));
        Assert.True(float.IsNaN(Quant8.Fp8E4M3ToFloat(0x7F)));
        Assert.True(float.IsNaN(Quant8.Fp8E4M3ToFloat(0xFF)));
        // Every finite code round-trips through the encoder.
        for (int code = 0; code < 256; code++)
        {
            if ((code & 0x7F) == 0x7F || code == 0x80) continue;
            Assert.Equal(code, Quant8.FloatToFp8E4M3(Quant8.Fp8E4M3ToFloat((byte)code)));
        }
    }

    [Fact]
    public void QuantizersRoundToNearestEvenAndSaturate()
    {
        Assert.Equal(0x38, Quant8.FloatToFp8E4M3(1.0625f));   // tie between 1 (even) and 1.125
        Assert.Equal(0x3A, Quant8.FloatToFp8E4M3(1.1875f));   // tie between 1.125 and 1.25 (even)
        Assert.Equal(0x7E, Quant8.FloatToFp8E4M3(1e6f));
        Assert.Equal(0xFE, Quant8.FloatToFp8E4M3(-1e6f));
        Assert.Equal(2, Quant8.FloatToInt8(2.5f));
        Assert.Equal(-127, Quant8.FloatToInt8(-300f));
        var q = new sbyte[3];
        var s = new float[1];
        Quant8.QuantizeInt8([-2f, 1f, 0.5f], 1, 3, q, s);
        Assert.Equal(2f / 127, s[0]);
        Assert.Equal(new sbyte[] { -127, 64, 32 }, q);
        Assert.Throws<ArgumentException>(() => Quant8.QuantizeInt8([float.NaN], 1, 1, q, s));
    }
}
