using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>Geometry of a window copy between two channel-major <c>[C,H,W]</c> tensors.</summary>
internal readonly struct WindowArgs
{
    public readonly int SrcH, SrcW, SrcY, SrcX, DstH, DstW, DstY, DstX, H, W;

    public WindowArgs(int srcH, int srcW, int srcY, int srcX, int dstH, int dstW, int dstY, int dstX, int h, int w)
    {
        SrcH = srcH; SrcW = srcW; SrcY = srcY; SrcX = srcX; DstH = dstH; DstW = dstW; DstY = dstY; DstX = dstX; H = h; W = w;
    }
}

/// <summary>
/// The data movement of a tiled VAE decode (diffusers <c>AutoencoderKL.tiled_decode</c>): a window copy between
/// channel-major tensors (cut a latent tile out, put a cropped decoded tile into the image) and the in-place linear
/// edge blend of <c>blend_v</c>/<c>blend_h</c>. Both are chunked elementwise kernels: the portable variant runs a few
/// coarse threads over contiguous ranges, the GPU variant a grid-stride loop with one thread per element.
/// </summary>
public sealed class TileKernels
{
    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, WindowArgs, ArrayView<float>, ArrayView<float>> _window;
    private readonly Action<AcceleratorStream, Index1D, ElementwiseChunks, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>> _blend;

    /// <summary>Loads (compiles) the kernels on <paramref name="context"/>'s accelerator.</summary>
    public TileKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator a = context.Accelerator;
        _window = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, WindowArgs, ArrayView<float>, ArrayView<float>>(WindowKernel);
        _blend = a.LoadAutoGroupedKernel<Index1D, ElementwiseChunks, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(BlendKernel);
    }

    /// <summary>
    /// dst[c, dstY+y, dstX+x] = src[c, srcY+y, srcX+x] for c &lt; channels, y &lt; h, x &lt; w. The caller checks that
    /// both windows lie inside their tensors; src and dst must not overlap.
    /// </summary>
    public void CopyWindow(ArrayView<float> src, int srcH, int srcW, int srcY, int srcX,
        ArrayView<float> dst, int dstH, int dstW, int dstY, int dstX, int channels, int h, int w)
    {
        long n = (long)channels * h * w;
        ElementwiseChecks.Length(src, (long)channels * srcH * srcW, nameof(src));
        ElementwiseChecks.Length(dst, (long)channels * dstH * dstW, nameof(dst));
        if (srcY < 0 || srcX < 0 || srcY + h > srcH || srcX + w > srcW)
            throw new ArgumentOutOfRangeException(nameof(srcY), $"Window {h}×{w} at ({srcY},{srcX}) is outside the {srcH}×{srcW} source.");
        if (dstY < 0 || dstX < 0 || dstY + h > dstH || dstX + w > dstW)
            throw new ArgumentOutOfRangeException(nameof(dstY), $"Window {h}×{w} at ({dstY},{dstX}) is outside the {dstH}×{dstW} destination.");
        if (n == 0) return;
        var c = ElementwiseChunks.For(_ctx, n, nameof(channels));
        _window(_ctx.Stream, c.Threads, c, new WindowArgs(srcH, srcW, srcY, srcX, dstH, dstW, dstY, dstX, h, w), src, dst);
    }

    /// <summary>
    /// diffusers' <c>blend_v</c> (vertical) or <c>blend_h</c>, in place on <paramref name="cur"/> <c>[C,H,W]</c>:
    /// for the first <paramref name="extent"/> rows (columns) t, cur = prev[last extent rows (columns)][t]·(1 − t/extent)
    /// + cur[t]·(t/extent), where <paramref name="prev"/> is <c>[C,prevH,prevW]</c> with prevW = W (vertical) or
    /// prevH = H (horizontal).
    /// </summary>
    public void BlendEdge(ArrayView<float> prev, int prevH, int prevW, ArrayView<float> cur, int channels, int h, int w, int extent, bool vertical)
    {
        ElementwiseChecks.Length(prev, (long)channels * prevH * prevW, nameof(prev));
        ElementwiseChecks.Length(cur, (long)channels * h * w, nameof(cur));
        if (extent < 1 || extent > (vertical ? Math.Min(prevH, h) : Math.Min(prevW, w)))
            throw new ArgumentOutOfRangeException(nameof(extent), extent, "extent must be in [1, min(prev, cur)] along the blended axis.");
        if (vertical ? prevW != w : prevH != h)
            throw new ArgumentException($"prev {prevH}×{prevW} does not line up with cur {h}×{w}.", nameof(prev));
        long n = (long)channels * (vertical ? (long)extent * w : (long)h * extent);
        var c = ElementwiseChunks.For(_ctx, n, nameof(channels));
        _blend(_ctx.Stream, c.Threads, c, prevH, prevW, h, w, extent, vertical ? 1 : 0, prev, cur);
    }

    private static void WindowKernel(Index1D t, ElementwiseChunks c, WindowArgs a, ArrayView<float> src, ArrayView<float> dst)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        int plane = a.H * a.W;
        for (int i = first; i < last; i += c.Step)
        {
            int ch = i / plane;
            int r = i - ch * plane;
            int y = r / a.W;
            int x = r - y * a.W;
            dst[((long)ch * a.DstH + a.DstY + y) * a.DstW + a.DstX + x] = src[((long)ch * a.SrcH + a.SrcY + y) * a.SrcW + a.SrcX + x];
        }
    }

    private static void BlendKernel(Index1D t, ElementwiseChunks c, int prevH, int prevW, int h, int w, int extent, int vertical,
        ArrayView<float> prev, ArrayView<float> cur)
    {
        int first = c.First(t);
        if (first >= c.N) return;
        int last = c.Last(first);
        // The blended band: extent×w (vertical) or h×extent (horizontal) per channel.
        int bandW = vertical != 0 ? w : extent;
        int plane = vertical != 0 ? extent * w : h * extent;
        for (int i = first; i < last; i += c.Step)
        {
            int ch = i / plane;
            int r = i - ch * plane;
            int y = r / bandW;
            int x = r - y * bandW;
            int k = vertical != 0 ? y : x;
            float wt = k / (float)extent;
            long ci = ((long)ch * h + y) * w + x;
            long pi = vertical != 0
                ? ((long)ch * prevH + prevH - extent + y) * prevW + x
                : ((long)ch * prevH + y) * prevW + prevW - extent + x;
            cur[ci] = prev[pi] * (1f - wt) + cur[ci] * wt;
        }
    }
}
