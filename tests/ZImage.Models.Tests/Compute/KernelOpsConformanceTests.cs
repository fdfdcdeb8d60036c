using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Compute;

/// <summary>
/// Every <see cref="KernelComputeOps"/> op against the float64 host reference on small random tensors, including
/// row views (non-zero element offsets) and all three weight dtypes.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class KernelOpsConformanceTests(ComputeFixture fx) : IDisposable
{
    private const double Tol = 2e-5;
    private readonly CachingAllocator _alloc = fx.CreateAllocator();
    private readonly HostReferenceOps _ref = new();
    private readonly Random _rng = new(1234);
    private readonly List<Tensor> _owned = [];

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _alloc.Dispose();
    }

    private float[] Rand(int n, float scale = 1f) => Enumerable.Range(0, n).Select(_ => (float)(_rng.NextDouble() * 2 - 1) * scale).ToArray();

    private Tensor F32(float[] data, params int[] shape)
    {
        var t = fx.Upload(_alloc, data, shape);
        _owned.Add(t);
        return t;
    }

    private Tensor Empty(TensorDType dtype, params int[] shape)
    {
        long n = shape.Aggregate(1L, (a, d) => a * d);
        var t = new Tensor(_alloc.Allocate(Math.Max(1, n) * Tensor.ElementSize(dtype), "test"), dtype, shape);
        _owned.Add(t);
        return t;
    }

    private Tensor Clone(Tensor src)
    {
        var t = Empty(src.DType, src.Shape);
        fx.Ops.Copy(src, t);
        return t;
    }

    private static void Close(float[] expected, float[] actual, double tol = Tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max <= tol, $"max |diff| {max:g3} > {tol:g3}");
    }

    private Tensor Weights(TensorDType dtype, float[] values, int n, int k)
    {
        var w = Empty(dtype, n, k);
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

    [Theory]
    [InlineData(TensorDType.F32, true)]
    [InlineData(TensorDType.BF16, false)]
    [InlineData(TensorDType.F16, true)]
    public void LinearMatchesReferenceForEveryWeightDType(TensorDType dtype, bool withBias)
    {
        const int m = 7, n = 13, k = 24;
        var x = F32(Rand(m * k), m, k);
        var w = Weights(dtype, Rand(n * k, 0.5f), n, k);
        var b = withBias ? F32(Rand(n), n) : null;
        var y = Empty(TensorDType.F32, m, n);
        var yRef = Empty(TensorDType.F32, m, n);
        fx.Ops.Linear(x, w, b, y);
        _ref.Linear(x, w, b, yRef);
        Close(HostReferenceOps.Get(yRef), fx.Ops.Download(y));
    }

    [Fact]
    public void NormOpsMatchReferenceOnRowViews()
    {
        const int rows = 9, d = 16;
        var big = F32(Rand((rows + 3) * d, 2f), rows + 3, d);
        var x = big.Rows(2, rows);
        var w = F32(Rand(d), d);
        var scale = F32(Rand(d), 1, d);
        var gate = F32(Rand(d), d);

        var y = Empty(TensorDType.F32, rows, d);
        var yRef = Empty(TensorDType.F32, rows, d);
        fx.Ops.RmsNorm(x, w, 1e-5f, y);
        _ref.RmsNorm(x, w, 1e-5f, yRef);
        Close(HostReferenceOps.Get(yRef), fx.Ops.Download(y));

        fx.Ops.RmsNormModulate(x, w, scale, 1e-5f, y);
        _ref.RmsNormModulate(x, w, scale, 1e-5f, yRef);
        Close(HostReferenceOps.Get(yRef), fx.Ops.Download(y));

        fx.Ops.LayerNormModulate(x, scale, 1e-6f, y);
        _ref.LayerNormModulate(x, scale, 1e-6f, yRef);
        Close(HostReferenceOps.Get(yRef), fx.Ops.Download(y));

        fx.Ops.LayerNorm(x, 1e-6f, y);
        _ref.LayerNorm(x, 1e-6f, yRef);
        Close(HostReferenceOps.Get(yRef), fx.Ops.Download(y));

        foreach (var g in new[] { gate, null })
        {
            var branch = F32(Rand(rows * d), rows, d);
            var res = Clone(x);
            var resRef = Clone(x);
            fx.Ops.RmsNormGatedResidual(branch, w, g, 1e-5f, res);
            _ref.RmsNormGatedResidual(branch, w, g, 1e-5f, resRef);
            Close(HostReferenceOps.Get(resRef), fx.Ops.Download(res));
        }
    }

    [Fact]
    public void ElementwiseOpsMatchReference()
    {
        const int rows = 5, d = 12;
        var a = F32(Rand(rows * d, 3f), rows, d);
        var b = F32(Rand(rows * d, 3f), rows, d);
        var v = F32(Rand(d), d);
        var y = Empty(TensorDType.F32, rows, d);
        var yRef = Empty(TensorDType.F32, rows, d);

        foreach (var (op, refOp) in new (Action, Action)[]
        {
            (() => fx.Ops.Silu(a, y), () => _ref.Silu(a, yRef)),
            (() => fx.Ops.Tanh(a, y), () => _ref.Tanh(a, yRef)),
            (() => fx.Ops.SwiGlu(a, b, y), () => _ref.SwiGlu(a, b, yRef)),
            (() => fx.Ops.Add(a, b, y), () => _ref.Add(a, b, yRef)),
            (() => fx.Ops.Modulate(a, v, y), () => _ref.Modulate(a, v, yRef)),
            (() => { fx.Ops.Copy(a, y); fx.Ops.GatedResidual(y, b, v); }, () => { _ref.Copy(a, yRef); _ref.GatedResidual(yRef, b, v); }),
            (() => { fx.Ops.Copy(a, y); fx.Ops.GatedResidual(y, b, null); }, () => { _ref.Copy(a, yRef); _ref.GatedResidual(yRef, b, null); }),
            (() => { fx.Ops.Copy(a, y); fx.Ops.FillRows(v, y, 1, 3); }, () => { _ref.Copy(a, yRef); _ref.FillRows(v, yRef, 1, 3); }),
            (() => { fx.Ops.Copy(a, y); fx.Ops.CopyRows(b, 0, y, 2, 3); }, () => { _ref.Copy(a, yRef); _ref.CopyRows(b, 0, yRef, 2, 3); }),
            (() => fx.Ops.DenormalizeLatents(a, 0.3611f, 0.1159f, y), () => _ref.DenormalizeLatents(a, 0.3611f, 0.1159f, yRef)),
            (() => { fx.Ops.Copy(a, y); fx.Ops.EulerStep(y, b, -0.125f); }, () => { _ref.Copy(a, yRef); _ref.EulerStep(yRef, b, -0.125f); }),
            (() => fx.Ops.CfgCombine(a, b, 4f, 0f, y), () => _ref.CfgCombine(a, b, 4f, 0f, yRef)),
            (() => fx.Ops.CfgCombine(a, b, 4f, 1.1f, y), () => _ref.CfgCombine(a, b, 4f, 1.1f, yRef)),
        })
        {
            op();
            refOp();
            Close(HostReferenceOps.Get(yRef), fx.Ops.Download(y));
        }
    }

    [Fact]
    public void AttentionAndRopeMatchReference()
    {
        const int s = 11, h = 2, dh = 8;
        var q = F32(Rand(s * h * dh), s, h, dh);
        var k = F32(Rand(s * h * dh), s, h, dh);
        var v = F32(Rand(s * h * dh), s, h, dh);
        var cos = F32(Rand(s * dh / 2), s, dh / 2);
        var sin = F32(Rand(s * dh / 2), s, dh / 2);
        var q2 = Clone(q);
        var k2 = Clone(k);
        fx.Ops.RopeInterleaved(q, k, cos, sin);
        _ref.RopeInterleaved(q2, k2, cos, sin);
        Close(HostReferenceOps.Get(q2), fx.Ops.Download(q));
        Close(HostReferenceOps.Get(k2), fx.Ops.Download(k));

        foreach (bool causal in new[] { false, true })
        {
            var o = Empty(TensorDType.F32, s, h, dh);
            var oRef = Empty(TensorDType.F32, s, h, dh);
            fx.Ops.Attention(q, k, v, 1f / MathF.Sqrt(dh), causal, o);
            _ref.Attention(q, k, v, 1f / MathF.Sqrt(dh), causal, oRef);
            Close(HostReferenceOps.Get(oRef), fx.Ops.Download(o));
        }
    }

    [Fact]
    public void PatchifyFollowsTheSpecLayoutAndUnpatchifyInvertsIt()
    {
        const int c = 16, hl = 6, wl = 10;
        var z = F32(Rand(c * hl * wl), c, hl, wl);
        int tokens = hl / 2 * (wl / 2);
        var p = Empty(TensorDType.F32, 32, 4 * c);
        var pRef = Empty(TensorDType.F32, 32, 4 * c);
        fx.Ops.Upload(new float[32 * 4 * c], p);
        fx.Ops.Upload(new float[32 * 4 * c], pRef);
        fx.Ops.Patchify(z, 2, p);
        _ref.Patchify(z, 2, pRef);
        Close(HostReferenceOps.Get(pRef), fx.Ops.Download(p), 0);
        Assert.All(fx.Ops.Download(p).Skip(tokens * 4 * c), v => Assert.Equal(0f, v));

        var back = Empty(TensorDType.F32, c, hl, wl);
        fx.Ops.Unpatchify(p, 2, back);
        Close(HostReferenceOps.Get(z), fx.Ops.Download(back), 0);
    }

    [Fact]
    public void ImageAndPreviewBytesMatchReference()
    {
        var img = F32(Rand(3 * 4 * 5, 1.3f), 3, 4, 5);
        var rgb = Empty(TensorDType.U8, 4, 5, 3);
        var rgbRef = Empty(TensorDType.U8, 4, 5, 3);
        fx.Ops.ToRgb8(img, rgb);
        _ref.ToRgb8(img, rgbRef);
        Assert.Equal(_ref.DownloadBytes(rgbRef), fx.Ops.DownloadBytes(rgb));

        var lat = F32(Rand(16 * 4 * 5), 16, 4, 5);
        var proj = F32(Rand(16 * 3, 0.2f), 16, 3);
        var bias = F32(Rand(3, 0.1f), 3);
        fx.Ops.LatentPreview(lat, proj, bias, rgb);
        _ref.LatentPreview(lat, proj, bias, rgbRef);
        byte[] got = fx.Ops.DownloadBytes(rgb), want = _ref.DownloadBytes(rgbRef);
        Assert.All(got.Zip(want), p => Assert.InRange(Math.Abs(p.First - p.Second), 0, 1));
    }
}
