namespace ZImage.Runtime.Compute;

public sealed partial class PlanningComputeOps
{
    /// <inheritdoc />
    public void CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width) =>
        TileOpValidation.CopyWindow(src, srcY, srcX, dst, dstY, dstX, height, width);

    /// <inheritdoc />
    public void BlendTileEdge(Tensor previous, Tensor current, int extent, bool vertical) =>
        TileOpValidation.BlendTileEdge(previous, current, extent, vertical);
}
