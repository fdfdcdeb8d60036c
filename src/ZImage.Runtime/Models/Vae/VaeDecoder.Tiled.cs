using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Models.Vae;

public sealed partial class VaeDecoder
{
    /// <summary>
    /// Decodes latents untiled (<paramref name="tiles"/> null) or with diffusers' <c>AutoencoderKL.tiled_decode</c>:
    /// z = latents / scaling_factor + shift_factor is cut into tiles of <c>tile_latent_min_size</c> latents starting
    /// every <c>LatentStride</c> latents (clipped at the border, so edge tiles can be one latent wide); each tile is
    /// decoded alone by the whole decoder; then, in row-major order, each decoded tile is blended in place with the
    /// (already blended) tile above (<c>blend_v</c>) and to its left (<c>blend_h</c>) over
    /// e = min(blend_extent, both sizes) pixels, and contributes its top-left <c>row_limit</c>² crop. A latent no larger
    /// than one tile decodes untiled, as in diffusers. Every tile, blend and copy is an <see cref="IComputeOps"/> call
    /// on tensors from the context, so the planning twin plans the tiled peak exactly; only the previous row of
    /// decoded tiles is kept alive, not all of them.
    /// </summary>
    /// <param name="latents">As for <see cref="Decode(Tensor)"/>. Not modified or disposed.</param>
    /// <param name="tiles">Tile settings, or null for one untiled decode.</param>
    /// <returns>The image <c>[out_channels, f·Hl, f·Wl]</c> F32 (tag <see cref="AllocationTags.Vae"/>); the caller disposes it.</returns>
    /// <exception cref="TensorShapeException">latents is not F32 or has another shape.</exception>
    /// <exception cref="VaeTileSizeException">The settings are for another upscale factor.</exception>
    public Tensor Decode(Tensor latents, VaeTileSettings? tiles)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (tiles is null) return Decode(latents);
        if (tiles.UpscaleFactor != UpscaleFactor)
            throw new VaeTileSizeException(nameof(tiles), tiles.UpscaleFactor,
                $"tile settings are for upscale factor {tiles.UpscaleFactor} but this decoder upsamples by {UpscaleFactor}.");
        var (hl, wl) = LatentSize(latents);
        if (!tiles.Tiles(hl, wl)) return Decode(latents);

        const string tag = AllocationTags.Vae;
        var ops = _context.Ops;
        int f = UpscaleFactor, tl = tiles.TileLatentMinSize, limit = tiles.RowLimit, c = Config.LatentChannels;
        int[] rows = tiles.Origins(hl), cols = tiles.Origins(wl);

        using var z = Denormalize(latents, hl, wl);
        var image = _context.Empty(tag, Config.OutChannels, f * hl, f * wl);
        var above = new Tensor?[cols.Length];
        var current = new Tensor?[cols.Length];
        try
        {
            int outY = 0;
            for (int r = 0; r < rows.Length; r++)
            {
                int th = Math.Min(tl, hl - rows[r]);
                int outX = 0, cropH = 0;
                for (int j = 0; j < cols.Length; j++)
                {
                    int tw = Math.Min(tl, wl - cols[j]);
                    var zt = _context.Empty(tag, c, th, tw);
                    try
                    {
                        ops.CopyWindow(z, rows[r], cols[j], zt, 0, 0, th, tw);
                    }
                    catch
                    {
                        zt.Dispose();
                        throw;
                    }
                    var tile = DecodeDenormalized(zt);
                    current[j] = tile;
                    int h = tile.Shape[1], w = tile.Shape[2];
                    if (above[j] is { } up)
                    {
                        int e = Math.Min(Math.Min(up.Shape[1], h), tiles.BlendExtent);
                        if (e > 0) ops.BlendTileEdge(up, tile, e, vertical: true);
                        // The tile above is no longer needed once its lower neighbour is blended.
                        up.Dispose();
                        above[j] = null;
                    }
                    if (j > 0)
                    {
                        var left = current[j - 1]!;
                        int e = Math.Min(Math.Min(left.Shape[2], w), tiles.BlendExtent);
                        if (e > 0) ops.BlendTileEdge(left, tile, e, vertical: false);
                    }
                    cropH = Math.Min(limit, h);
                    int cropW = Math.Min(limit, w);
                    ops.CopyWindow(tile, 0, 0, image, outY, outX, cropH, cropW);
                    outX += cropW;
                }
                outY += cropH;
                (above, current) = (current, above);
            }
            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in above) t?.Dispose();
            foreach (var t in current) t?.Dispose();
        }
    }
}
