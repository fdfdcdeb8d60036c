using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels.Mma;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Mma;

/// <summary>
/// The tensor-core flash attention (online softmax in registers, P reused from S's fragments, V through
/// ldmatrix.trans) run on the CPU accelerator through the exact fragment emulator against a float64 reference.
/// </summary>
[Trait("Category", "MmaEmulation")]
public sealed class MmaAttentionEmulationTests(MmaFixture fx) : IClassFixture<MmaFixture>
{
    // P is rounded to bf16 before P·V (as FA2 does): ~2^-9 relative per weight, averaged over the keys.
    private const double Tol = 6e-3;

    public static TheoryData<int, int, int, int, int, bool, int, bool, int> Cases => new()
    {
        // dh, sq, sk, hq, hkv, causal, validKeys, bf16 inputs, warps
        { 16, 20, 40, 2, 1, false, -1, false, 1 },   // GQA (2 query heads on one KV head), ragged Sq and Sk, 2 key tiles
        { 32, 24, 24, 2, 2, true, -1, true, 1 },     // causal, bf16 inputs through cp.async
        { 128, 16, 24, 1, 1, false, 21, false, 1 },  // real head dim, caption padding mask (keys 21..23 ignored)
        { 16, 40, 20, 1, 1, false, 13, true, 2 },    // two warps per block, padding inside the only key tile
    };

    [NotPerBackend(MmaFixture.EmulatorIsTheSubject)]
    [Theory]
    [MemberData(nameof(Cases))]
    public void FlashAttentionMatchesTheFloat64Reference(int dh, int sq, int sk, int hq, int hkv, bool causal, int validKeys, bool bf16, int warps)
    {
        var rng = new Random(dh * 100 + sq + sk);
        var (q, qb) = MmaReference.Bf16Random(rng, sq * hq * dh, 2f);
        var (k, kb) = MmaReference.Bf16Random(rng, sk * hkv * dh, 2f);
        var (v, vb) = MmaReference.Bf16Random(rng, sk * hkv * dh);
        float scale = 1f / MathF.Sqrt(dh);
        var expected = Reference(q, k, v, sq, sk, hq, hkv, dh, scale, causal, validKeys);

        var acc = fx.Accelerator;
        using var dq = acc.Allocate1D(q);
        using var dk = acc.Allocate1D(k);
        using var dv = acc.Allocate1D(v);
        using var dqb = acc.Allocate1D(qb);
        using var dkb = acc.Allocate1D(kb);
        using var dvb = acc.Allocate1D(vb);
        using var o = acc.Allocate1D<float>(sq * hq * dh);
        o.CopyFromCPU(Enumerable.Repeat(float.NaN, sq * hq * dh).ToArray());
        fx.Attention.Warps = warps;
        if (bf16) fx.Attention.Forward(dqb.View, dkb.View, dvb.View, o.View, sq, sk, hq, hkv, dh, scale, causal, validKeys);
        else fx.Attention.Forward(dq.View, dk.View, dv.View, o.View, sq, sk, hq, hkv, dh, scale, causal, validKeys);
        acc.Synchronize();

        double err = MmaReference.RelativeError(expected, o.GetAsArray1D());
        Assert.True(err < Tol, $"relative error {err:E3}");
    }

    [Fact]
    public void AWrongFragmentLaneMappingMakesTheAttentionWrong()
    {
        const int dh = 16, s = 16;
        var rng = new Random(11);
        var (q, _) = MmaReference.Bf16Random(rng, s * dh, 2f);
        var (k, _) = MmaReference.Bf16Random(rng, s * dh, 2f);
        var (v, _) = MmaReference.Bf16Random(rng, s * dh);
        var expected = Reference(q, k, v, s, s, 1, 1, dh, 0.25f, false, -1);

        Assert.True(RunWith<PtxIsaLaneLayout>(q, k, v, s, dh, expected) < Tol);
        Assert.True(RunWith<SwappedKPairLayout>(q, k, v, s, dh, expected) > 0.05);
        Assert.True(RunWith<RotatedColumnLayout>(q, k, v, s, dh, expected) > 0.05);
    }

    [Fact]
    public void UnsupportedHeadDimsAndMasksAreRejectedByName()
    {
        using var buf = fx.Accelerator.Allocate1D<float>(4096);
        var ex = Assert.Throws<ArgumentException>(() => fx.Attention.Forward(buf.View, buf.View, buf.View, buf.View, 4, 4, 1, 1, 64, 0.1f, false));
        Assert.Contains("headDim = 64", ex.Message, StringComparison.Ordinal);
        Assert.Contains("16, 32, 128", ex.Message, StringComparison.Ordinal);
        var mask = Assert.Throws<ArgumentOutOfRangeException>(() => fx.Attention.Forward(buf.View, buf.View, buf.View, buf.View, 4, 4, 1, 1, 16, 0.1f, false, validKeys: 5));
        Assert.Contains("validKeys = 5", mask.Message, StringComparison.Ordinal);
    }

    private double RunWith<TLayout>(float[] q, float[] k, float[] v, int s, int dh, double[] expected)
        where TLayout : struct, IMmaLaneLayout
    {
        var acc = fx.Accelerator;
        var kernel = acc.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaAttnShape>(
            MmaAttentionKernels.AttentionKernel<float, F32Activation, MmaOutput16x16, LayoutMma<TLayout>>);
        using var dq = acc.Allocate1D(q);
        using var dk = acc.Allocate1D(k);
        using var dv = acc.Allocate1D(v);
        using var o = acc.Allocate1D<float>(s * dh);
        var shape = new MmaAttnShape { Sq = s, Sk = s, Hq = 1, Hkv = 1, Dh = dh, HeadsPerKv = 1, Scale = 0.25f, ValidKeys = s, Warps = 1, ChunksLog2 = 1 };
        kernel(acc.DefaultStream, new KernelConfig(new Index2D((s + 15) / 16, 1), new Index2D(32, 1)), dq.View, dk.View, dv.View, o.View, shape);
        acc.Synchronize();
        return MmaReference.RelativeError(expected, o.GetAsArray1D());
    }

    private static double[] Reference(float[] q, float[] k, float[] v, int sq, int sk, int hq, int hkv, int dh, float scale, bool causal, int validKeys)
    {
        int keys = validKeys < 0 ? sk : validKeys;
        var o = new double[sq * hq * dh];
        var w = new double[sk];
        for (int i = 0; i < sq; i++)
        for (int h = 0; h < hq; h++)
        {
            int kvh = h / (hq / hkv);
            double max = double.NegativeInfinity;
            for (int j = 0; j < sk; j++)
            {
                w[j] = double.NegativeInfinity;
                if (j >= keys || (causal && j > i)) continue;
                double dot = 0;
                for (int d = 0; d < dh; d++) dot += (double)q[(i * hq + h) * dh + d] * k[(j * hkv + kvh) * dh + d];
                w[j] = dot * scale;
                max = Math.Max(max, w[j]);
            }
            double sum = 0;
            for (int j = 0; j < sk; j++) { w[j] = Math.Exp(w[j] - max); sum += w[j]; }
            for (int d = 0; d < dh; d++)
            {
                double acc = 0;
                for (int j = 0; j < sk; j++) acc += w[j] * v[(j * hkv + kvh) * dh + d];
                o[(i * hq + h) * dh + d] = acc / sum;
            }
        }
        return o;
    }
}
