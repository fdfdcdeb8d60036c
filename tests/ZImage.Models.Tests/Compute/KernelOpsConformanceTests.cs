using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Compute;

/// <summary>
/// Every <see cref="KernelComputeOps"/> op against the float64 host reference on small random tensors, including
/// row views (non-zero element offsets) and all three weight dtypes.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class KernelOpsConformanceTests(ComputeFixture fx) : OpsConformanceTestBase(fx, 1234)
{
    [Theory]
    [InlineData(TensorDType.F32, true)]
    [InlineData(TensorDType.BF16, false)]
    [InlineData(TensorDType.F16, true)]
    public void LinearMatchesReferenceForEveryWeightDType(TensorDType dtype, bool withBias)
    {
        const int m = 7, n = 13, k = 24;
        var x = F32(Rand(m * k), m, k);
        var w = Matrix(dtype, Rand(n * k, 0.5f), n, k);
        var b = withBias ? F32(Rand(n), n) : null;
        var y = Empty(TensorDType.F32, m, n);
        var yRef = Empty(TensorDType.F32, m, n);
        Fx.Ops.Linear(x, w, b, y);
        Ref.Linear(x, w, b, yRef);
        Close(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));
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
        Fx.Ops.RmsNorm(x, w, 1e-5f, y);
        Ref.RmsNorm(x, w, 1e-5f, yRef);
        Close(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));

        Fx.Ops.RmsNormModulate(x, w, scale, 1e-5f, y);
        Ref.RmsNormModulate(x, w, scale, 1e-5f, yRef);
        Close(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));

        Fx.Ops.LayerNormModulate(x, scale, 1e-6f, y);
        Ref.LayerNormModulate(x, scale, 1e-6f, yRef);
        Close(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));

        Fx.Ops.LayerNorm(x, 1e-6f, y);
        Ref.LayerNorm(x, 1e-6f, yRef);
        Close(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));

        foreach (var g in new[] { gate, null })
        {
            var branch = F32(Rand(rows * d), rows, d);
            var res = Clone(x);
            var resRef = Clone(x);
            Fx.Ops.RmsNormGatedResidual(branch, w, g, 1e-5f, res);
            Ref.RmsNormGatedResidual(branch, w, g, 1e-5f, resRef);
            Close(HostReferenceOps.Get(resRef), Fx.Ops.Download(res));
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
            (() => Fx.Ops.Silu(a, y), () => Ref.Silu(a, yRef)),
            (() => Fx.Ops.Tanh(a, y), () => Ref.Tanh(a, yRef)),
            (() => Fx.Ops.SwiGlu(a, b, y), () => Ref.SwiGlu(a, b, yRef)),
            (() => Fx.Ops.Add(a, b, y), () => Ref.Add(a, b, yRef)),
            (() => Fx.Ops.Modulate(a, v, y), () => Ref.Modulate(a, v, yRef)),
            (() => { Fx.Ops.Copy(a, y); Fx.Ops.GatedResidual(y, b, v); }, () => { Ref.Copy(a, yRef); Ref.GatedResidual(yRef, b, v); }),
            (() => { Fx.Ops.Copy(a, y); Fx.Ops.GatedResidual(y, b, null); }, () => { Ref.Copy(a, yRef); Ref.GatedResidual(yRef, b, null); }),
            (() => { Fx.Ops.Copy(a, y); Fx.Ops.FillRows(v, y, 1, 3); }, () => { Ref.Copy(a, yRef); Ref.FillRows(v, yRef, 1, 3); }),
            (() => { Fx.Ops.Copy(a, y); Fx.Ops.CopyRows(b, 0, y, 2, 3); }, () => { Ref.Copy(a, yRef); Ref.CopyRows(b, 0, yRef, 2, 3); }),
            (() => Fx.Ops.DenormalizeLatents(a, 0.3611f, 0.1159f, y), () => Ref.DenormalizeLatents(a, 0.3611f, 0.1159f, yRef)),
            (() => { Fx.Ops.Copy(a, y); Fx.Ops.EulerStep(y, b, -0.125f); }, () => { Ref.Copy(a, yRef); Ref.EulerStep(yRef, b, -0.125f); }),
            (() => Fx.Ops.CfgCombine(a, b, 4f, 0f, y), () => Ref.CfgCombine(a, b, 4f, 0f, yRef)),
            (() => Fx.Ops.CfgCombine(a, b, 4f, 1.1f, y), () => Ref.CfgCombine(a, b, 4f, 1.1f, yRef)),
        })
        {
            op();
            refOp();
            Close(HostReferenceOps.Get(yRef), Fx.Ops.Download(y));
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
        Fx.Ops.RopeInterleaved(q, k, cos, sin);
        Ref.RopeInterleaved(q2, k2, cos, sin);
        Close(HostReferenceOps.Get(q2), Fx.Ops.Download(q));
        Close(HostReferenceOps.Get(k2), Fx.Ops.Download(k));

        foreach (bool causal in new[] { false, true })
        {
            var o = Empty(TensorDType.F32, s, h, dh);
            var oRef = Empty(TensorDType.F32, s, h, dh);
            Fx.Ops.Attention(q, k, v, 1f / MathF.Sqrt(dh), causal, o);
            Ref.Attention(q, k, v, 1f / MathF.Sqrt(dh), causal, oRef);
            Close(HostReferenceOps.Get(oRef), Fx.Ops.Download(o));
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
        Fx.Ops.Upload(new float[32 * 4 * c], p);
        Fx.Ops.Upload(new float[32 * 4 * c], pRef);
        Fx.Ops.Patchify(z, 2, p);
        Ref.Patchify(z, 2, pRef);
        Close(HostReferenceOps.Get(pRef), Fx.Ops.Download(p), 0);
        Assert.All(Fx.Ops.Download(p).Skip(tokens * 4 * c), v => Assert.Equal(0f, v));

        var back = Empty(TensorDType.F32, c, hl, wl);
        Fx.Ops.Unpatchify(p, 2, back);
        Close(HostReferenceOps.Get(z), Fx.Ops.Download(back), 0);
    }

    [Fact]
    public void ImageAndPreviewBytesMatchReference()
    {
        var img = F32(Rand(3 * 4 * 5, 1.3f), 3, 4, 5);
        var rgb = Empty(TensorDType.U8, 4, 5, 3);
        var rgbRef = Empty(TensorDType.U8, 4, 5, 3);
        Fx.Ops.ToRgb8(img, rgb);
        Ref.ToRgb8(img, rgbRef);
        Assert.Equal(Ref.DownloadBytes(rgbRef), Fx.Ops.DownloadBytes(rgb));

        var lat = F32(Rand(16 * 4 * 5), 16, 4, 5);
        var proj = F32(Rand(16 * 3, 0.2f), 16, 3);
        var bias = F32(Rand(3, 0.1f), 3);
        Fx.Ops.LatentPreview(lat, proj, bias, rgb);
        Ref.LatentPreview(lat, proj, bias, rgbRef);
        byte[] got = Fx.Ops.DownloadBytes(rgb), want = Ref.DownloadBytes(rgbRef);
        Assert.All(got.Zip(want), p => Assert.InRange(Math.Abs(p.First - p.Second), 0, 1));
    }
}
