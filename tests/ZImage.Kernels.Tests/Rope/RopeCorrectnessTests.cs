using ILGPU.Runtime;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Rope;

/// <summary>Both RoPE conventions, on one tensor and on q+k in one launch, match a float64 reference in both variants.</summary>
[Collection(GemmAcceleratorCollection.Name)]
public sealed class RopeCorrectnessTests(GemmAcceleratorFixture fx)
{
    /// <summary>(backend, rotate-half, S, Hq, Hk (0 = single tensor), Dh).</summary>
    public static TheoryData<KernelBackend, bool, int, int, int, int> Cases()
    {
        var both = new TheoryData<bool, int, int, int, int>();
        foreach (bool rotateHalf in new[] { false, true })
        {
            both.Add(rotateHalf, 1, 1, 0, 2);
            both.Add(rotateHalf, 7, 3, 0, 16);
            both.Add(rotateHalf, 5, 4, 2, 32);
            both.Add(rotateHalf, 3, 2, 1, 128);
        }
        var portable = new TheoryData<bool, int, int, int, int>();
        foreach (object[] row in both) portable.Add((bool)row[0], (int)row[1], (int)row[2], (int)row[3], (int)row[4]);
        portable.Add(false, 33, 5, 5, 64);
        portable.Add(true, 33, 8, 2, 64);
        return KernelBackends.Matrix(portable, both);
    }

    /// <summary>Rotated values match the reference; in the q+k form both tensors are rotated with the same tables.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64Reference(KernelBackend backend, bool rotateHalf, int s, int hq, int hk, int dh)
    {
        var rng = new Random(s * 131 + hq * 17 + hk * 5 + dh + (rotateHalf ? 1 : 0));
        int width = rotateHalf ? dh : dh / 2;
        float[] q = GemmReference.Random(rng, s * hq * dh, 3f);
        float[] k = GemmReference.Random(rng, s * Math.Max(hk, 1) * dh, 3f);
        var angles = GemmReference.Random(rng, s * width, 4f);
        float[] cos = angles.Select(MathF.Cos).ToArray();
        float[] sin = angles.Select(MathF.Sin).ToArray();
        RopeKernels rope = fx.Rope(backend);
        var acc = rope.Context.Accelerator;
        using var qb = GemmAcceleratorFixture.Upload(acc, q);
        using var kb = GemmAcceleratorFixture.Upload(acc, k);
        using var cb = GemmAcceleratorFixture.Upload(acc, cos);
        using var sb = GemmAcceleratorFixture.Upload(acc, sin);

        if (hk == 0)
        {
            if (rotateHalf) rope.ApplyRotateHalf(qb.View, cb.View, sb.View, s, hq, dh);
            else rope.ApplyInterleaved(qb.View, cb.View, sb.View, s, hq, dh);
        }
        else
        {
            if (rotateHalf) rope.ApplyRotateHalf(qb.View, kb.View, cb.View, sb.View, s, hq, hk, dh);
            else rope.ApplyInterleaved(qb.View, kb.View, cb.View, sb.View, s, hq, hk, dh);
        }
        acc.Synchronize();

        Verify(q, qb.GetAsArray1D(), hq, "q");
        if (hk > 0) Verify(k, kb.GetAsArray1D(), hk, "k");
        else Assert.Equal(k, kb.GetAsArray1D()); // the single-tensor form must leave other buffers alone

        void Verify(float[] input, float[] actual, int heads, string name)
        {
            var (expected, magnitude) = rotateHalf
                ? AttnReference.RopeRotateHalf(input, cos, sin, s, heads, dh)
                : AttnReference.RopeInterleaved(input, cos, sin, s, heads, dh);
            GemmReference.AssertClose(expected, magnitude, actual, 1e-6, $"{backend} rope {name} rotateHalf={rotateHalf} S={s} H={heads} Dh={dh}");
        }
    }

    /// <summary>An odd head dim cannot be split into pairs and is rejected.</summary>
    [Fact]
    public void OddHeadDimThrows()
    {
        using var buf = fx.PortableAccelerator.Allocate1D<float>(64);
        var ex = Assert.Throws<ArgumentException>(() => fx.Rope(KernelVariant.Portable).ApplyInterleaved(buf.View, buf.View, buf.View, 2, 2, 5));
        Assert.Equal("headDim", ex.ParamName);
    }

    /// <summary>A rotate-half table with only Dh/2 columns per token is too short and is rejected.</summary>
    [Fact]
    public void ShortRotateHalfTableThrows()
    {
        using var x = fx.PortableAccelerator.Allocate1D<float>(2 * 1 * 8);
        using var table = fx.PortableAccelerator.Allocate1D<float>(2 * 4);
        var ex = Assert.Throws<ArgumentException>(() => fx.Rope(KernelVariant.Portable).ApplyRotateHalf(x.View, table.View, table.View, 2, 1, 8));
        Assert.Equal("cos", ex.ParamName);
    }
}
