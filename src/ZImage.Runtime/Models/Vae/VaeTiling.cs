namespace ZImage.Runtime.Models.Vae;

/// <summary>Whether the VAE decode runs in tiles (diffusers' <c>AutoencoderKL.enable_tiling</c>).</summary>
public enum VaeTiling
{
    /// <summary>Tile when the untiled decode does not fit the budget (decided from exact plans, see <see cref="VaeTilingPlanner"/>).</summary>
    Auto,

    /// <summary>Always one decode of the whole latent.</summary>
    Off,

    /// <summary>Tiled decode (a latent no larger than one tile still decodes untiled, as in diffusers).</summary>
    On,
}

/// <summary>Thrown when tile settings cannot give diffusers' tiled decode (tile below the minimum or crop inconsistent).</summary>
public sealed class VaeTileSizeException : ArgumentOutOfRangeException
{
    /// <summary>Creates the exception for <paramref name="paramName"/> = <paramref name="actualValue"/>.</summary>
    public VaeTileSizeException(string paramName, object actualValue, string message) : base(paramName, actualValue, message)
    {
    }
}

/// <summary>
/// diffusers' <c>AutoencoderKL</c> tile attributes: <c>tile_sample_min_size</c> (pixels), <c>tile_latent_min_size</c>
/// (latents) and <c>tile_overlap_factor</c>. Derived exactly as diffusers does: latent stride
/// <c>int(tile_latent·(1 − overlap))</c>, blend extent <c>int(tile_sample·overlap)</c> pixels, crop
/// <c>tile_sample − blend</c> pixels.
/// </summary>
public sealed record VaeTileSettings
{
    /// <summary>The smallest latent tile: with overlap 0.25, tiles of 4k latents are the ones whose crop tiles the image exactly.</summary>
    public const int MinTileLatentSize = 4;

    /// <summary>diffusers' default overlap factor.</summary>
    public const double DefaultOverlapFactor = 0.25;

    /// <summary>Validates and creates the settings.</summary>
    /// <param name="tileSampleMinSize">Tile edge in image pixels (= tileLatentMinSize · upscale factor).</param>
    /// <param name="tileLatentMinSize">Tile edge in latents (≥ <see cref="MinTileLatentSize"/>).</param>
    /// <param name="upscaleFactor">Pixels per latent of the decoder (8 for Z-Image's VAE).</param>
    /// <param name="overlapFactor">Overlap of neighbouring tiles, in [0, 1).</param>
    /// <exception cref="VaeTileSizeException">A value is outside its allowed range, or the crop would not tile the image.</exception>
    public VaeTileSettings(int tileSampleMinSize, int tileLatentMinSize, int upscaleFactor = 8, double overlapFactor = DefaultOverlapFactor)
    {
        if (upscaleFactor < 1)
            throw new VaeTileSizeException(nameof(upscaleFactor), upscaleFactor, $"upscale factor {upscaleFactor} must be ≥ 1.");
        if (!(overlapFactor >= 0 && overlapFactor < 1))
            throw new VaeTileSizeException(nameof(overlapFactor), overlapFactor, $"tile overlap factor {overlapFactor} must be in [0, 1).");
        if (tileLatentMinSize < MinTileLatentSize)
            throw new VaeTileSizeException(nameof(tileLatentMinSize), tileLatentMinSize,
                $"tile latent size {tileLatentMinSize} is below the minimum: allowed {MinTileLatentSize} latents ({MinTileLatentSize * upscaleFactor} px) or more.");
        if ((long)tileLatentMinSize * upscaleFactor != tileSampleMinSize)
            throw new VaeTileSizeException(nameof(tileSampleMinSize), tileSampleMinSize,
                $"tile sample size {tileSampleMinSize} px must be tile latent size {tileLatentMinSize} × upscale factor {upscaleFactor} = {(long)tileLatentMinSize * upscaleFactor} px.");
        TileSampleMinSize = tileSampleMinSize;
        TileLatentMinSize = tileLatentMinSize;
        UpscaleFactor = upscaleFactor;
        OverlapFactor = overlapFactor;
        LatentStride = (int)(tileLatentMinSize * (1 - overlapFactor));
        BlendExtent = (int)(tileSampleMinSize * overlapFactor);
        RowLimit = tileSampleMinSize - BlendExtent;
        if (LatentStride < 1 || (long)LatentStride * upscaleFactor != RowLimit)
            throw new VaeTileSizeException(nameof(tileLatentMinSize), tileLatentMinSize,
                $"tile latent size {tileLatentMinSize} with overlap {overlapFactor} gives a {RowLimit} px crop but a {LatentStride * upscaleFactor} px stride, so the tiles would not cover the image; " +
                $"with overlap {DefaultOverlapFactor} use a multiple of {MinTileLatentSize} latents (≥ {MinTileLatentSize}).");
    }

    /// <summary>Tiles of <paramref name="tileSampleMinSize"/> pixels (a multiple of 4 × upscale factor) for a decoder with <paramref name="upscaleFactor"/>.</summary>
    /// <exception cref="VaeTileSizeException">The size is not a whole number of latents or is below the minimum.</exception>
    public static VaeTileSettings FromSampleSize(int tileSampleMinSize, int upscaleFactor = 8, double overlapFactor = DefaultOverlapFactor)
    {
        if (upscaleFactor < 1 || tileSampleMinSize % upscaleFactor != 0)
            throw new VaeTileSizeException(nameof(tileSampleMinSize), tileSampleMinSize,
                $"tile sample size {tileSampleMinSize} px must be a multiple of the upscale factor {upscaleFactor}, at least {MinTileLatentSize * upscaleFactor} px.");
        return new VaeTileSettings(tileSampleMinSize, tileSampleMinSize / upscaleFactor, upscaleFactor, overlapFactor);
    }

    /// <summary>diffusers' defaults after <c>enable_tiling()</c>: tile_sample_min_size = config <c>sample_size</c>, latent = that / 2^(blocks−1), overlap 0.25.</summary>
    public static VaeTileSettings FromConfig(Configuration.VaeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int f = 1 << (config.BlockOutChannels.Count - 1);
        return new VaeTileSettings(config.SampleSize, config.SampleSize / f, f);
    }

    /// <summary><c>tile_sample_min_size</c>: tile edge in pixels.</summary>
    public int TileSampleMinSize { get; }

    /// <summary><c>tile_latent_min_size</c>: tile edge in latents.</summary>
    public int TileLatentMinSize { get; }

    /// <summary>Pixels per latent.</summary>
    public int UpscaleFactor { get; }

    /// <summary><c>tile_overlap_factor</c>.</summary>
    public double OverlapFactor { get; }

    /// <summary>diffusers' <c>overlap_size</c>: the latent distance between tile origins.</summary>
    public int LatentStride { get; }

    /// <summary>diffusers' <c>blend_extent</c> in pixels (before clipping to the tile sizes).</summary>
    public int BlendExtent { get; }

    /// <summary>diffusers' <c>row_limit</c>: the pixels each tile contributes along each axis.</summary>
    public int RowLimit { get; }

    /// <summary>Whether a <paramref name="latentHeight"/>×<paramref name="latentWidth"/> latent is tiled at all (diffusers: either side larger than a tile).</summary>
    public bool Tiles(int latentHeight, int latentWidth) => latentHeight > TileLatentMinSize || latentWidth > TileLatentMinSize;

    /// <summary>The tile origins along an axis of <paramref name="latentSize"/> latents: 0, stride, 2·stride, … &lt; size.</summary>
    public int[] Origins(int latentSize)
    {
        var o = new List<int>();
        for (int i = 0; i < latentSize; i += LatentStride) o.Add(i);
        return o.ToArray();
    }
}
