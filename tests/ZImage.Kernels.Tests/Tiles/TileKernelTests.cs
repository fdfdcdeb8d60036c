using ZImage.Kernels.Tests.Infrastructure;
using static ZImage.Kernels.Tests.Infrastructure.NormConvTestData;

namespace ZImage.Kernels.Tests.Tiles;

/// <summary>
/// The tiled-VAE data movement kernels against a float64 host reference of diffusers' semantics, on both variants:
/// fresh random inputs, poisoned outputs, odd sizes (windows at every border, extents of 1 and of the whole axis).
/// </summary>
[Collection(NormConvCollection.Name)]
public sealed class TileKernelTests(NormConvFixture fx)
{
    private static readonly TheoryData<int, int, int> WindowRows = new() { { 1, 1, 1 }, { 3, 5, 7 }, { 2, 9, 4 } };

    public static TheoryData<KernelBackend, int, int, int> Windows() => KernelBackends.Matrix(WindowRows, WindowRows);

    [Theory]
    [MemberData(nameof(Windows))]
    public void CopyWindowMovesExactlyTheWindow(KernelBackend backend, int c, int h, int w)
    {
        const int sh = 11, sw = 13, dh = 10, dw = 9;
        var acc = fx.For(backend).Accelerator;
        var src = Random(c * 31 + h, c * sh * sw, 3f);
        var dst = Poison(c * dh * dw);
        int sy = sh - h, sx = 2, dy = 1, dx = dw - w;
        using var bs = Upload(acc, src);
        using var bd = Upload(acc, dst);
        new TileKernels(fx.For(backend)).CopyWindow(bs.View, sh, sw, sy, sx, bd.View, dh, dw, dy, dx, c, h, w);
        var expected = (float[])dst.Clone();
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    expected[(ch * dh + dy + y) * dw + dx + x] = src[(ch * sh + sy + y) * sw + sx + x];
        // Bitwise: the window is copied exactly and every element outside it keeps its poison.
        Assert.Equal(Array.ConvertAll(expected, BitConverter.SingleToInt32Bits), Array.ConvertAll(Download(acc, bd), BitConverter.SingleToInt32Bits));
    }

    private static readonly TheoryData<bool, int> BlendRows = new() { { true, 1 }, { true, 3 }, { true, 5 }, { false, 1 }, { false, 3 }, { false, 5 } };

    public static TheoryData<KernelBackend, bool, int> Blends() => KernelBackends.Matrix(BlendRows, BlendRows);

    [Theory]
    [MemberData(nameof(Blends))]
    public void BlendEdgeIsDiffusersBlend(KernelBackend backend, bool vertical, int extent)
    {
        const int c = 2, h = 5, w = 7;
        int ph = vertical ? 6 : h, pw = vertical ? w : 9;
        var acc = fx.For(backend).Accelerator;
        var prev = Random(extent * 7 + 1, c * ph * pw, 2f);
        var cur = Random(extent * 7 + 2, c * h * w, 2f);
        using var bp = Upload(acc, prev);
        using var bc = Upload(acc, cur);
        new TileKernels(fx.For(backend)).BlendEdge(bp.View, ph, pw, bc.View, c, h, w, extent, vertical);

        // blend_v: b[:, :, y, :] = a[:, :, -e + y, :] * (1 - y / e) + b[:, :, y, :] * (y / e); blend_h along x.
        var expected = Array.ConvertAll(cur, v => (double)v);
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int t = vertical ? y : x;
                    if (t >= extent) continue;
                    double a = vertical ? prev[(ch * ph + ph - extent + y) * pw + x] : prev[(ch * ph + y) * pw + pw - extent + x];
                    int i = (ch * h + y) * w + x;
                    expected[i] = a * (1 - (double)t / extent) + cur[i] * ((double)t / extent);
                }
        AssertClose(expected, Download(acc, bc), atol: 1e-6, what: "blend");
    }

    [Fact]
    public void OutOfRangeWindowsAndExtentsAreRejected()
    {
        var acc = fx.Portable.Accelerator;
        using var a = Upload(acc, new float[2 * 4 * 4]);
        using var b = Upload(acc, new float[2 * 4 * 4]);
        var k = new TileKernels(fx.Portable);
        Assert.Throws<ArgumentOutOfRangeException>(() => k.CopyWindow(a.View, 4, 4, 1, 0, b.View, 4, 4, 0, 0, 2, 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => k.CopyWindow(a.View, 4, 4, 0, 0, b.View, 4, 4, 0, 1, 2, 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => k.BlendEdge(a.View, 4, 4, b.View, 2, 4, 4, 5, vertical: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => k.BlendEdge(a.View, 4, 4, b.View, 2, 4, 4, 0, vertical: false));
    }
}
