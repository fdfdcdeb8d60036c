using ZImage.Kernels;

namespace ZImage.Runtime.Compute;

public sealed partial class KernelComputeOps
{
    // Created on first use, like the model kernels: only a tiled decode needs them.
    private TileKernels? _tileKernels;

    private TileKernels TileKernels
    {
        get
        {
            var k = Volatile.Read(ref _tileKernels);
            if (k is not null) return k;
            var created = new TileKernels(Context);
            return Interlocked.CompareExchange(ref _tileKernels, created, null) ?? created;
        }
    }

    /// <inheritdoc />
    public void CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width)
    {
        var (s, d) = TileOpValidation.CopyWindow(src, srcY, srcX, dst, dstY, dstX, height, width);
        TileKernels.CopyWindow(src.F32, s.H, s.W, srcY, srcX, dst.F32, d.H, d.W, dstY, dstX, s.C, height, width);
    }

    /// <inheritdoc />
    public void BlendTileEdge(Tensor previous, Tensor current, int extent, bool vertical)
    {
        var (p, c) = TileOpValidation.BlendTileEdge(previous, current, extent, vertical);
        TileKernels.BlendEdge(previous.F32, p.H, p.W, current.F32, c.C, c.H, c.W, extent, vertical);
    }
}
