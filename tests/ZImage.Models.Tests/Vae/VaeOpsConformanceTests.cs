using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Vae;

/// <summary>
/// The VAE and text-encoder ops of <see cref="KernelComputeOps"/> against the float64 host reference on small random
/// tensors (all weight dtypes, odd sizes, row views), plus the shape checks shared with planning mode.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class VaeOpsConformanceTests(ComputeFixture fx) : OpsConformanceTestBase(fx, 4321)
{
    [Theory]
    [InlineData(TensorDType.F32, 3, false)]
    [InlineData(TensorDType.BF16, 3, false)]
    [InlineData(TensorDType.F16, 3, true)]
    [InlineData(TensorDType.F32, 1, false)]
    [InlineData(TensorDType.BF16, 3, true)]
    [InlineData(TensorDType.F32, 1, true)]
    public void ConvMatchesReference(TensorDType dtype, int k, bool upsample)
    {
        const int cin = 5, cout = 6, h = 7, w = 9;
        int f = upsample ? 2 : 1;
        var x = F32(Rand(cin * h * w), cin, h, w);
        var weight = Matrix(dtype, Rand(cout * cin * k * k, 0.5f), cout, cin, k, k);
        var bias = F32(Rand(cout), cout);
        foreach (var b in new[] { bias, null })
        {
            var y = Poisoned(cout, f * h, f * w);
            var yRef = Empty(cout, f * h, f * w);
            if (upsample)
            {
                Fx.Ops.Upsample2xConv2d(x, weight, b, y);
                Ref.Upsample2xConv2d(x, weight, b, yRef);
            }
            else
            {
                Fx.Ops.Conv2d(x, weight, b, y);
                Ref.Conv2d(x, weight, b, yRef);
            }
            Close(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 40)]
    [InlineData(37, 5)]
    [InlineData(64, 60)]
    public void TransposeMatchesReferenceAndRoundTrips(int rows, int cols)
    {
        var x = F32(Rand(rows * cols), rows, cols);
        var y = Poisoned(cols, rows);
        var yRef = Empty(cols, rows);
        Fx.Ops.Transpose2d(x, y);
        Ref.Transpose2d(x, yRef);
        Assert.Equal(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));

        // [C,H,W] → [H·W,C] → [C,H,W] is the identity (the VAE attention's round trip).
        var back = Poisoned(rows, cols);
        Fx.Ops.Transpose2d(y, back);
        Assert.Equal(HostReferenceOps.Get(x), Fx.Ops.Download(back));
    }

    [Fact]
    public void RopeRotateHalfMatchesReferenceWithGqaHeads()
    {
        const int s = 9, hq = 4, hk = 2, dh = 16;
        var q = F32(Rand(s * hq * dh), s, hq, dh);
        var k = F32(Rand(s * hk * dh), s, hk, dh);
        var cos = F32(Rand(s * dh), s, dh);
        var sin = F32(Rand(s * dh), s, dh);
        var q2 = Clone(q);
        var k2 = Clone(k);
        Fx.Ops.RopeRotateHalf(q, k, cos, sin);
        Ref.RopeRotateHalf(q2, k2, cos, sin);
        Close(HostReferenceOps.Get(q2), Fx.Ops.Download(q));
        Close(HostReferenceOps.Get(k2), Fx.Ops.Download(k));
    }

    [Fact]
    public void ShapeChecksRejectMismatchesInBothImplementations()
    {
        var planning = new PlanningComputeOps();
        var x = F32(Rand(2 * 4 * 4), 2, 4, 4);
        var w3 = Matrix(TensorDType.F32, Rand(3 * 2 * 9), 3, 2, 3, 3);
        var w5 = Matrix(TensorDType.F32, Rand(3 * 2 * 25), 3, 2, 5, 5);
        var wrongCin = Matrix(TensorDType.F32, Rand(3 * 5 * 9), 3, 5, 3, 3);
        var y = Empty(3, 4, 4);
        var yUp = Empty(3, 8, 8);
        foreach (IComputeOps ops in new IComputeOps[] { Fx.Ops, planning })
        {
            Assert.Equal("w", Assert.Throws<TensorShapeException>(() => ops.Conv2d(x, w5, null, y)).ParamName);
            Assert.Equal("w", Assert.Throws<TensorShapeException>(() => ops.Conv2d(x, wrongCin, null, y)).ParamName);
            Assert.Equal("y", Assert.Throws<TensorShapeException>(() => ops.Conv2d(x, w3, null, yUp)).ParamName);
            Assert.Equal("y", Assert.Throws<TensorShapeException>(() => ops.Upsample2xConv2d(x, w3, null, y)).ParamName);
            Assert.Equal("y", Assert.Throws<TensorShapeException>(() => ops.Conv2d(x, w3, null, x)).ParamName);
            Assert.Equal("y", Assert.Throws<TensorShapeException>(() => ops.Transpose2d(x, Empty(2, 16))).ParamName);
            Assert.Equal("y", Assert.Throws<TensorShapeException>(() => ops.Transpose2d(x, x)).ParamName);
            var q = Empty(3, 2, 8);
            Assert.Equal("cos", Assert.Throws<TensorShapeException>(() => ops.RopeRotateHalf(q, Empty(3, 1, 8), Empty(3, 4), Empty(3, 8))).ParamName);
            Assert.Equal("k", Assert.Throws<TensorShapeException>(() => ops.RopeRotateHalf(q, Empty(3, 1, 6), Empty(3, 8), Empty(3, 8))).ParamName);
            Assert.Equal("k", Assert.Throws<TensorShapeException>(() => ops.RopeRotateHalf(q, q, Empty(3, 8), Empty(3, 8))).ParamName);
        }
    }

}
