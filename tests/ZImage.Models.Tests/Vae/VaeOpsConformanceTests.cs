using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Vae;

/// <summary>
/// The VAE and text-encoder ops of <see cref="KernelComputeOps"/> against the float64 host reference on small random
/// tensors (all weight dtypes, odd sizes, row views), plus the shape checks shared with planning mode.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class VaeOpsConformanceTests(ComputeFixture fx) : IDisposable
{
    private const double Tol = 2e-5;
    private readonly CachingAllocator _alloc = fx.CreateAllocator();
    private readonly HostReferenceOps _ref = new();
    private readonly Random _rng = new(4321);
    private readonly List<Tensor> _owned = [];

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _alloc.Dispose();
    }

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
                fx.Ops.Upsample2xConv2d(x, weight, b, y);
                _ref.Upsample2xConv2d(x, weight, b, yRef);
            }
            else
            {
                fx.Ops.Conv2d(x, weight, b, y);
                _ref.Conv2d(x, weight, b, yRef);
            }
            Close(HostReferenceOps.Get(yRef), fx.Ops.Download(y));
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
        fx.Ops.Transpose2d(x, y);
        _ref.Transpose2d(x, yRef);
        Assert.Equal(HostReferenceOps.Get(yRef), fx.Ops.Download(y));

        // [C,H,W] → [H·W,C] → [C,H,W] is the identity (the VAE attention's round trip).
        var back = Poisoned(rows, cols);
        fx.Ops.Transpose2d(y, back);
        Assert.Equal(HostReferenceOps.Get(x), fx.Ops.Download(back));
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
        fx.Ops.RopeRotateHalf(q, k, cos, sin);
        _ref.RopeRotateHalf(q2, k2, cos, sin);
        Close(HostReferenceOps.Get(q2), fx.Ops.Download(q));
        Close(HostReferenceOps.Get(k2), fx.Ops.Download(k));
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
        foreach (IComputeOps ops in new IComputeOps[] { fx.Ops, planning })
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

    private float[] Rand(int n, float scale = 1f) => Enumerable.Range(0, n).Select(_ => (float)(_rng.NextDouble() * 2 - 1) * scale).ToArray();

    private Tensor Track(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    private Tensor F32(float[] data, params int[] shape) => Track(fx.Upload(_alloc, data, shape));

    private Tensor Empty(params int[] shape) => Empty(TensorDType.F32, shape);

    private Tensor Empty(TensorDType dtype, params int[] shape)
    {
        long n = shape.Aggregate(1L, (a, d) => a * d);
        return Track(new Tensor(_alloc.Allocate(Math.Max(1, n) * Tensor.ElementSize(dtype), "test"), dtype, shape));
    }

    /// <summary>An F32 output pre-filled with NaN, so an element the kernel fails to write shows up.</summary>
    private Tensor Poisoned(params int[] shape)
    {
        var t = Empty(shape);
        fx.Ops.Upload(Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray(), t);
        return t;
    }

    private Tensor Clone(Tensor src)
    {
        var t = Empty(src.DType, src.Shape);
        fx.Ops.Copy(src, t);
        return t;
    }

    private Tensor Matrix(TensorDType dtype, float[] values, params int[] shape)
    {
        var w = Empty(dtype, shape);
        switch (dtype)
        {
            case TensorDType.F32: fx.Ops.Upload(values, w); break;
            case TensorDType.BF16:
                ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(w.BF16, values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray());
                break;
            default:
                ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(w.F16, values.Select(v => (ILGPU.Half)v).ToArray());
                break;
        }
        return w;
    }

    private static void Close(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            max = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(max, d);
        }
        Assert.True(max <= Tol, $"max |diff| {max:g3} > {Tol:g3}");
    }
}
