using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;

namespace ZImage.Runtime.Models.Vae;

/// <summary>What <see cref="VaeTilingPlanner.Choose"/> decided.</summary>
/// <param name="Tiles">The tile settings to pass to <see cref="VaeDecoder.Decode(Tensor, VaeTileSettings?)"/>, or null for an untiled decode.</param>
/// <param name="PlannedPeakBytes">The decode's planned activation peak with that choice (see <see cref="VaeTilingPlanner.PlanDecodePeakBytes"/>).</param>
/// <param name="Fits">Whether that peak is within the budget.</param>
/// <param name="Reason">One sentence saying why.</param>
public sealed record VaeTilingDecision(VaeTileSettings? Tiles, long PlannedPeakBytes, bool Fits, string Reason)
{
    /// <summary>Whether the decode runs tiled.</summary>
    public bool Tiled => Tiles is not null;
}

/// <summary>
/// Plans VAE decodes exactly (the real <see cref="VaeDecoder"/> code on the planning twin: <see cref="PlanningComputeOps"/>,
/// <see cref="PlanningWeights"/>, a caching allocator over a simulated device) and resolves <see cref="VaeTiling"/>:
/// <c>Auto</c> tiles only when the untiled decode does not fit the budget, and then uses the largest tile (from the
/// preferred size down, halving, in multiples of <see cref="VaeTileSettings.MinTileLatentSize"/> latents) whose plan fits.
/// </summary>
public static class VaeTilingPlanner
{
    /// <summary>
    /// The peak of the bytes the decode allocates (allocator-rounded, the latents input included, the weights not),
    /// from a planning run of the same code.
    /// </summary>
    /// <param name="config">The VAE config.</param>
    /// <param name="latentHeight">Latent rows (≥ 1).</param>
    /// <param name="latentWidth">Latent columns (≥ 1).</param>
    /// <param name="tiles">Tile settings, or null for untiled.</param>
    /// <param name="matrixDType">Device dtype of the weight matrices (does not change activations; weights are excluded).</param>
    /// <param name="settings">Allocator settings of the real run (rounding and splitting change the peak).</param>
    public static long PlanDecodePeakBytes(VaeConfig config, int latentHeight, int latentWidth, VaeTileSettings? tiles,
        TensorDType matrixDType = TensorDType.BF16, AllocatorSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (latentHeight < 1) throw new ArgumentOutOfRangeException(nameof(latentHeight), latentHeight, "latent height must be ≥ 1.");
        if (latentWidth < 1) throw new ArgumentOutOfRangeException(nameof(latentWidth), latentWidth, "latent width must be ≥ 1.");
        using var allocator = new CachingAllocator(new SimulatedDeviceBackend(1L << 50), settings, ownsBackend: true);
        var ctx = new ComputeContext(allocator, new PlanningComputeOps());
        using var weights = new PlanningWeights(allocator, matrixDType);
        var decoder = new VaeDecoder(config, weights, ctx);
        long weightBytes = allocator.GetStatistics().AllocatedBytes.Current;
        allocator.ResetPeakStats();
        using (var latents = ctx.Empty(AllocationTags.Latents, config.LatentChannels, latentHeight, latentWidth))
        using (decoder.Decode(latents, tiles))
        {
        }
        return allocator.GetStatistics().AllocatedBytes.Peak - weightBytes;
    }

    /// <summary>Resolves a tiling mode for one decode.</summary>
    /// <param name="mode">Off, On or Auto.</param>
    /// <param name="config">The VAE config.</param>
    /// <param name="latentHeight">Latent rows.</param>
    /// <param name="latentWidth">Latent columns.</param>
    /// <param name="budgetBytes">Bytes the decode's activations may use (Auto compares plans against it).</param>
    /// <param name="preferred">Tile settings for On, and Auto's largest candidate; null: <see cref="VaeTileSettings.FromConfig"/>.</param>
    /// <param name="matrixDType">Device dtype of the weight matrices.</param>
    /// <param name="settings">Allocator settings of the real run.</param>
    /// <exception cref="ArgumentOutOfRangeException">mode is not a defined value, or budgetBytes is negative.</exception>
    public static VaeTilingDecision Choose(VaeTiling mode, VaeConfig config, int latentHeight, int latentWidth, long budgetBytes,
        VaeTileSettings? preferred = null, TensorDType matrixDType = TensorDType.BF16, AllocatorSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "VAE tiling must be Auto, Off or On.");
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        preferred ??= VaeTileSettings.FromConfig(config);
        long Plan(VaeTileSettings? t) => PlanDecodePeakBytes(config, latentHeight, latentWidth, t, matrixDType, settings);

        if (mode == VaeTiling.Off)
        {
            long p = Plan(null);
            return new(null, p, p <= budgetBytes, "VAE tiling is off.");
        }
        if (mode == VaeTiling.On)
        {
            long p = Plan(preferred);
            string why = preferred.Tiles(latentHeight, latentWidth)
                ? $"VAE tiling is on ({preferred.TileSampleMinSize} px tiles)."
                : $"VAE tiling is on, but the {latentHeight}×{latentWidth} latent fits one {preferred.TileLatentMinSize}-latent tile, so it decodes untiled (as diffusers).";
            return new(preferred, p, p <= budgetBytes, why);
        }

        long untiled = Plan(null);
        if (untiled <= budgetBytes)
            return new(null, untiled, true, $"the untiled decode fits ({untiled} of {budgetBytes} bytes).");

        // Candidates: the preferred size (or, when it would not tile this latent, the largest tile that does), halving.
        int f = preferred.UpscaleFactor, m = VaeTileSettings.MinTileLatentSize;
        int size = preferred.Tiles(latentHeight, latentWidth)
            ? preferred.TileLatentMinSize
            : (Math.Max(latentHeight, latentWidth) - 1) / m * m;
        VaeTileSettings? last = null;
        long lastPeak = untiled;
        for (; size >= m; size = size / 2 / m * m)
        {
            var t = new VaeTileSettings(size * f, size, f, preferred.OverlapFactor);
            long p = Plan(t);
            last = t;
            lastPeak = p;
            if (p <= budgetBytes)
                return new(t, p, true, $"the untiled decode needs {untiled} bytes, over the {budgetBytes}-byte budget; {t.TileSampleMinSize} px tiles need {p}.");
        }
        return last is null
            ? new(null, untiled, false, $"the untiled decode needs {untiled} bytes, over the {budgetBytes}-byte budget, and the latent is too small to tile.")
            : new(last, lastPeak, false, $"even the smallest tiles ({last.TileSampleMinSize} px) need {lastPeak} bytes, over the {budgetBytes}-byte budget.");
    }
}
