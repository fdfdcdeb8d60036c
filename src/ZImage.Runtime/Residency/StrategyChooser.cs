using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Runtime.Residency;

/// <summary>The ladder options (<c>ZImage:Residency</c>; CLI <c>--offload</c>, <c>--weights</c>, <c>--activations</c>, <c>--vae-tiling</c>, <c>--dtype</c>).</summary>
public sealed class ResidencyOptions
{
    /// <summary>Where weights live; Auto (default) picks the fastest rung whose exact plan fits.</summary>
    public OffloadMode Offload { get; set; } = OffloadMode.Auto;
    /// <summary>Weight format; Auto is the lossless default dtype.</summary>
    public WeightFormat Weights { get; set; } = WeightFormat.Auto;
    /// <summary>Activation dtype.</summary>
    public ActivationFormat Activations { get; set; } = ActivationFormat.F32;
    /// <summary>VAE tiled decode.</summary>
    public VaeTilingMode VaeTiling { get; set; } = VaeTilingMode.Auto;
    /// <summary>Host memory allowed for streamed weights (e.g. <c>32GiB</c>); null detects what the host has.</summary>
    public string? HostMemory { get; set; }
    /// <summary>The VAE tile size in pixels for the tiling rungs (default 512; at least 32 = 4 latents, a multiple of 32 with the 0.25 overlap).</summary>
    public int VaeTileSize { get; set; } = ResidencyStrategy.DefaultVaeTileSize;
    /// <summary>
    /// Host prompt-embedding cache size (e.g. <c>64MiB</c>; null, <c>0</c> or <c>none</c>: off, the default), at most 16 GiB.
    /// A repeated prompt then skips the text encoder; plans count the capacity as host memory.
    /// </summary>
    public string? PromptCache { get; set; }

    /// <summary>The prompt cache size in bytes (0: off).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a size, or above 16 GiB; the message names the value and the range.</exception>
    public long PromptCacheBytes()
    {
        if (PromptCache is null || PromptCache.Trim() is "" or "0" or "none" or "off") return 0;
        long bytes;
        try { bytes = ByteSize.Parse(PromptCache); }
        catch (FormatException e)
        {
            throw new ArgumentOutOfRangeException(nameof(PromptCache), PromptCache, $"The prompt cache size '{PromptCache}' is not a size such as 64MiB ({e.Message}); allowed: 0/none .. 16GiB.");
        }
        return PromptEmbeddingCache.Validate(bytes);
    }

    /// <summary>Whether <c>--weights auto</c> may choose 8-bit (lossy) weights when they avoid full offload (<c>--allow-lossy</c>).</summary>
    public bool AllowLossy { get; set; }
}

/// <summary>
/// The <c>--offload auto --weights auto</c> chooser: plans every candidate rung exactly (the planning twin of the
/// engine runs it) and takes the first that fits. Order (lossless first): nothing offloaded &gt; text-encoder offload
/// &gt; text-encoder offload with VAE tiling (the configured tile, then half of it) &gt; full offload &gt; full offload
/// with VAE tiling. 8-bit weights only
/// when asked for (<c>--weights int8|fp8</c>: the same order in that format) or when auto may be lossy
/// (<see cref="ResidencyOptions.AllowLossy"/>: int8 none / text-encoder / text-encoder + tiling come before full
/// offload, which uploads every DiT block every step, and int8 full offload comes last). Rungs whose streamed
/// weights exceed the host budget are skipped. When nothing fits, the refusal names the smallest change that would
/// (e.g. "fits with --weights int8") when there is one, and the last candidate's plan comes back with the reason.
/// </summary>
public static class StrategyChooser
{
    /// <summary>The candidates <paramref name="options"/> allows, fastest first.</summary>
    /// <param name="options">The requested rung values.</param>
    /// <param name="defaultWeights">What <see cref="WeightFormat.Auto"/> resolves to.</param>
    /// <exception cref="RungNotAvailableException">A requested value has not landed (bf16 activations).</exception>
    /// <exception cref="Models.Vae.VaeTileSizeException">The VAE tile size is below the latent minimum or does not tile.</exception>
    public static IReadOnlyList<ResidencyStrategy> Candidates(ResidencyOptions options, WeightFormat defaultWeights)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Activations != ActivationFormat.F32) throw new RungNotAvailableException("--activations", ResidencyNames.Name(options.Activations));
        _ = Models.Vae.VaeTileSettings.FromSampleSize(options.VaeTileSize);
        var weights = options.Weights == WeightFormat.Auto ? defaultWeights : options.Weights;
        var lossless = Ladder(options, weights);
        if (options.Weights != WeightFormat.Auto || !options.AllowLossy || weights is WeightFormat.Int8 or WeightFormat.Fp8)
            return lossless;
        var lossy = Ladder(options, WeightFormat.Int8);
        return [.. lossless.Where(c => c.Offload != OffloadMode.All), .. lossy.Where(c => c.Offload != OffloadMode.All),
            .. lossless.Where(c => c.Offload == OffloadMode.All), .. lossy.Where(c => c.Offload == OffloadMode.All)];
    }

    private static List<ResidencyStrategy> Ladder(ResidencyOptions options, WeightFormat weights)
    {
        OffloadMode[] offloads = options.Offload == OffloadMode.Auto ? [OffloadMode.None, OffloadMode.TextEncoder, OffloadMode.All] : [options.Offload];
        var list = new List<ResidencyStrategy>();
        foreach (var o in offloads)
        {
            // Tiling auto: the tiled rung follows the untiled one of the same offload, except with nothing offloaded
            // (text-encoder offload frees far more than tiling, and is lossless and nearly free).
            // Tiling auto also tries half the tile size (a quarter of the tile's decode workspace) before giving up on the rung.
            int tile = options.VaeTileSize, half = tile / 2;
            int[] tiles = options.VaeTiling switch
            {
                VaeTilingMode.On => [tile],
                VaeTilingMode.Off => [0],
                _ when o == OffloadMode.None && options.Offload == OffloadMode.Auto => [0],
                _ => half >= 32 && half % 32 == 0 ? [0, tile, half] : [0, tile],
            };
            foreach (int t in tiles)
                list.Add(new ResidencyStrategy(o, weights, options.Activations, t > 0, "") { VaeTileSize = t > 0 ? t : tile });
        }
        return list;
    }

    /// <summary>How a rung is spelled in reasons, e.g. <c>--offload text-encoder --vae-tiling on --vae-tile-size 256</c>.</summary>
    public static string Spell(ResidencyStrategy s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var parts = new List<string>();
        if (s.Offload != OffloadMode.None) parts.Add($"--offload {s.OffloadName}");
        if (s.IsLossy) parts.Add($"--weights {s.WeightsName}");
        if (s.VaeTiling) parts.Add($"--vae-tiling on --vae-tile-size {s.VaeTileSize}");
        return parts.Count == 0 ? "everything resident" : string.Join(" ", parts);
    }

    /// <summary>Chooses a rung.</summary>
    /// <param name="options">The requested rung values.</param>
    /// <param name="defaultWeights">What <see cref="WeightFormat.Auto"/> resolves to.</param>
    /// <param name="plan">The exact plan of the request (or the sizing request) under a candidate rung.</param>
    /// <param name="fits">Whether a plan is acceptable (default: <see cref="MemoryPlan.Fits"/>).</param>
    /// <returns>The chosen rung (with its reason) and its plan.</returns>
    public static (ResidencyStrategy Strategy, MemoryPlan Plan) Choose(ResidencyOptions options, WeightFormat defaultWeights,
        Func<ResidencyStrategy, MemoryPlan> plan, Func<MemoryPlan, bool>? fits = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        fits ??= p => p.Fits;
        var candidates = Candidates(options, defaultWeights);
        var (hostAvailable, hostSource) = HostMemory.Available(options.HostMemory);
        var rejected = new List<string>();
        MemoryPlan? last = null;
        foreach (var c in candidates)
        {
            var p = plan(c);
            last = p;
            string name = Spell(c);
            if (p.HostBytes > hostAvailable)
            {
                rejected.Add($"{name} needs {ByteSize.Format(p.HostBytes)} of host memory but {ByteSize.Format(hostAvailable)} is available ({hostSource})");
                continue;
            }
            if (!fits(p))
            {
                rejected.Add($"{name} needs {ByteSize.Format(p.NeedsMoreBytes)} more device memory");
                continue;
            }
            string reason = rejected.Count == 0
                ? (candidates.Count == 1 ? $"{name} as requested: fits" : $"{name} fits")
                : $"{string.Join("; ", rejected)}; {name} fits";
            var chosen = c with { Reason = reason };
            return (chosen, p with { Strategy = chosen });
        }
        string none = $"nothing fits: {string.Join("; ", rejected)}" + SmallestLossyChange(options, defaultWeights, plan, fits, hostAvailable);
        var fallback = candidates[^1] with { Reason = none };
        return (fallback, last! with { Strategy = fallback });
    }

    // When only lossless rungs were tried, whether an int8 rung would fit (named as the change to make).
    private static string SmallestLossyChange(ResidencyOptions options, WeightFormat defaultWeights, Func<ResidencyStrategy, MemoryPlan> plan,
        Func<MemoryPlan, bool> fits, long hostAvailable)
    {
        if (options.Weights != WeightFormat.Auto || options.AllowLossy || defaultWeights is WeightFormat.Int8 or WeightFormat.Fp8) return "";
        foreach (var c in Ladder(options, WeightFormat.Int8))
        {
            var p = plan(c);
            if (p.HostBytes <= hostAvailable && fits(p)) return $"; fits with {Spell(c)}";
        }
        return "; no 8-bit rung (--weights int8) fits either";
    }
}
