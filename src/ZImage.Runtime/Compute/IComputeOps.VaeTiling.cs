namespace ZImage.Runtime.Compute;

/// <summary>The data movement of the tiled VAE decode (channel-major F32 <c>[C,H,W]</c> tensors).</summary>
public partial interface IComputeOps
{
    /// <summary>
    /// dst[c, dstY+y, dstX+x] = src[c, srcY+y, srcX+x] for every channel c, y &lt; height, x &lt; width: cuts a window
    /// out of src or places one into dst. src and dst are F32 <c>[C,H,W]</c> with the same C (a leading batch of 1 is
    /// accepted); both windows must lie inside their tensors; src and dst must not share a block.
    /// </summary>
    void CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width);

    /// <summary>
    /// diffusers' <c>AutoencoderKL.blend_v</c> (<paramref name="vertical"/>) or <c>blend_h</c>, in place on
    /// <paramref name="current"/>: for t &lt; extent, current[.., t, ..] = previous[.., last extent rows, ..][t]·(1 − t/extent)
    /// + current[.., t, ..]·(t/extent) along rows (vertical) or columns (horizontal). Both F32 <c>[C,H,W]</c>;
    /// vertical needs equal widths, horizontal equal heights; 1 ≤ extent ≤ the smaller size along the blended axis.
    /// </summary>
    void BlendTileEdge(Tensor previous, Tensor current, int extent, bool vertical);
}

/// <summary>Shape checks of the tiling ops, shared by the kernel and planning implementations.</summary>
internal static class TileOpValidation
{
    public static (int C, int H, int W) Chw(Tensor t, string name)
    {
        OpValidation.F32(t, name);
        int[] s = t.Shape;
        bool ok = s.Length == 3 || (s.Length == 4 && s[0] == 1);
        if (!ok || s[^1] < 1 || s[^2] < 1 || s[^3] < 1)
            OpValidation.Throw($"{name} must be a non-empty F32 [C,H,W] (or [1,C,H,W]) but is {OpValidation.Fmt(t)}.", name);
        return (s[^3], s[^2], s[^1]);
    }

    public static ((int C, int H, int W) Src, (int C, int H, int W) Dst) CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width)
    {
        var s = Chw(src, nameof(src));
        var d = Chw(dst, nameof(dst));
        if (s.C != d.C)
            OpValidation.Throw($"dst {OpValidation.Fmt(dst)} must have the {s.C} channels of src {OpValidation.Fmt(src)}.", nameof(dst));
        if (height < 1 || width < 1)
            OpValidation.Throw($"The window must be at least 1×1 but is {height}×{width}.", nameof(height));
        if (srcY < 0 || srcX < 0 || (long)srcY + height > s.H || (long)srcX + width > s.W)
            OpValidation.Throw($"The {height}×{width} window at ({srcY},{srcX}) must lie inside src {OpValidation.Fmt(src)}.", nameof(srcY));
        if (dstY < 0 || dstX < 0 || (long)dstY + height > d.H || (long)dstX + width > d.W)
            OpValidation.Throw($"The {height}×{width} window at ({dstY},{dstX}) must lie inside dst {OpValidation.Fmt(dst)}.", nameof(dstY));
        if (ReferenceEquals(src.Allocation, dst.Allocation))
            OpValidation.Throw("dst must not share its device block with src.", nameof(dst));
        return (s, d);
    }

    public static ((int C, int H, int W) Prev, (int C, int H, int W) Cur) BlendTileEdge(Tensor previous, Tensor current, int extent, bool vertical)
    {
        var p = Chw(previous, nameof(previous));
        var c = Chw(current, nameof(current));
        if (p.C != c.C || (vertical ? p.W != c.W : p.H != c.H))
            OpValidation.Throw($"previous {OpValidation.Fmt(previous)} must have the channels and {(vertical ? "width" : "height")} of current {OpValidation.Fmt(current)}.", nameof(previous));
        int max = vertical ? Math.Min(p.H, c.H) : Math.Min(p.W, c.W);
        if (extent < 1 || extent > max)
            OpValidation.Throw($"extent {extent} must be in [1, {max}].", nameof(extent));
        if (ReferenceEquals(previous.Allocation, current.Allocation))
            OpValidation.Throw("current must not share its device block with previous.", nameof(current));
        return (p, c);
    }
}
