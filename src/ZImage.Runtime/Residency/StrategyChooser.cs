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
}

/// <summary>
/// The <c>--offload auto --weights auto</c> chooser: plans every candidate rung exactly (the planning twin of the
/// engine runs it) and takes the first that fits, in the order nothing offloaded &gt; text-encoder offload &gt; full
/// offload (lossless rungs only: 8-bit weights are used only when asked for). Rungs whose streamed weights exceed the
/// host budget are skipped. When nothing fits, the last candidate's plan comes back with the reason.
/// </summary>
public static class StrategyChooser
{
    /// <summary>The candidates <paramref name="options"/> allows, fastest first.</summary>
    /// <param name="options">The requested rung values.</param>
    /// <param name="defaultWeights">What <see cref="WeightFormat.Auto"/> resolves to.</param>
    /// <exception cref="RungNotAvailableException">A requested value has not landed.</exception>
    public static IReadOnlyList<ResidencyStrategy> Candidates(ResidencyOptions options, WeightFormat defaultWeights)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Activations != ActivationFormat.F32) throw new RungNotAvailableException("--activations", ResidencyNames.Name(options.Activations));
        if (options.VaeTiling == VaeTilingMode.On) throw new RungNotAvailableException("--vae-tiling", "on");
        var weights = options.Weights == WeightFormat.Auto ? defaultWeights : options.Weights;
        if (weights is WeightFormat.Int8 or WeightFormat.Fp8) throw new RungNotAvailableException("--weights", ResidencyNames.Name(weights));
        OffloadMode[] offloads = options.Offload == OffloadMode.Auto ? [OffloadMode.None, OffloadMode.TextEncoder, OffloadMode.All] : [options.Offload];
        return offloads.Select(o => new ResidencyStrategy(o, weights, options.Activations, false, "")).ToList();
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
            string name = c.Offload == OffloadMode.None ? "everything resident" : $"--offload {c.OffloadName}";
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
        string none = $"nothing fits: {string.Join("; ", rejected)}"
            + (options.Weights == WeightFormat.Auto ? "; 8-bit weights (--weights int8|fp8) and VAE tiling are not available in this build yet" : "");
        var fallback = candidates[^1] with { Reason = none };
        return (fallback, last! with { Strategy = fallback });
    }
}
