using ZImage.Runtime.Models.Configuration;

namespace ZImage.Runtime.Models.Transformer;

/// <summary>
/// The sizes a Z-Image DiT forward needs, derived once from the transformer config (see §3.1 of the architecture
/// spec): width, heads, layer counts, FFN width <c>int(D/3·8)</c>, adaLN width <c>min(D, 256)</c>, RoPE axes.
/// </summary>
internal sealed record TransformerDims
{
    /// <summary>Sinusoid width of the timestep embedder (fixed in the reference).</summary>
    public const int TimestepFrequencyDim = 256;
    /// <summary>Hidden width of the timestep MLP (fixed in the reference).</summary>
    public const int TimestepMidDim = 1024;
    /// <summary>Image and caption token counts are each padded to a multiple of this.</summary>
    public const int SeqMultiple = 32;
    /// <summary>q/k RMSNorm epsilon (hard-coded in the reference attention, independent of norm_eps).</summary>
    public const float QkNormEps = 1e-5f;
    /// <summary>Final LayerNorm epsilon.</summary>
    public const float FinalNormEps = 1e-6f;

    public required int InChannels { get; init; }
    public required int PatchSize { get; init; }
    public required int Dim { get; init; }
    public required int Heads { get; init; }
    public required int Layers { get; init; }
    public required int RefinerLayers { get; init; }
    public required int CapFeatDim { get; init; }
    public required float NormEps { get; init; }
    public required double RopeTheta { get; init; }
    public required float TScale { get; init; }
    public required int[] AxesDims { get; init; }
    public required int[] AxesLens { get; init; }

    public int HeadDim => Dim / Heads;
    public int FfnDim => (int)(Dim / 3.0 * 8.0);
    public int AdaLnDim => Math.Min(Dim, 256);
    public int PatchDim => PatchSize * PatchSize * InChannels;

    /// <summary>The sizes of <paramref name="config"/>; only the single-frame patch layout (f_patch 1) is supported.</summary>
    public static TransformerDims From(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.FPatchSize != 1)
            throw new ArgumentOutOfRangeException(nameof(config), config.FPatchSize, $"all_f_patch_size[0] = {config.FPatchSize} is not supported; Z-Image images use 1.");
        return new TransformerDims
        {
            InChannels = config.InChannels,
            PatchSize = config.PatchSize,
            Dim = config.Dim,
            Heads = config.NHeads,
            Layers = config.NLayers,
            RefinerLayers = config.NRefinerLayers,
            CapFeatDim = config.CapFeatDim,
            NormEps = (float)config.NormEps,
            RopeTheta = config.RopeTheta,
            TScale = (float)config.TScale,
            AxesDims = config.AxesDims.ToArray(),
            AxesLens = config.AxesLens.ToArray(),
        }.Validate();
    }

    public static int Ceil32(int n) => (n + SeqMultiple - 1) / SeqMultiple * SeqMultiple;

    /// <summary>Checks the invariants the forward relies on; throws naming the bad value.</summary>
    public TransformerDims Validate()
    {
        Check(InChannels > 0, nameof(InChannels), InChannels, "> 0");
        Check(PatchSize > 0, nameof(PatchSize), PatchSize, "> 0");
        Check(Heads > 0 && Dim > 0 && Dim % Heads == 0, nameof(Heads), Heads, $"> 0 and dividing dim {Dim}");
        Check(HeadDim % 2 == 0, nameof(Dim), Dim, "a dim whose head dim is even");
        Check(Layers >= 0, nameof(Layers), Layers, ">= 0");
        Check(RefinerLayers >= 0, nameof(RefinerLayers), RefinerLayers, ">= 0");
        Check(CapFeatDim > 0, nameof(CapFeatDim), CapFeatDim, "> 0");
        Check(NormEps > 0, nameof(NormEps), NormEps, "> 0");
        Check(AxesDims.Length == 3 && AxesLens.Length == 3, nameof(AxesDims), AxesDims.Length, "3 axes (with 3 axes_lens)");
        Check(AxesDims.All(d => d > 0 && d % 2 == 0), nameof(AxesDims), string.Join(",", AxesDims), "positive even sizes");
        Check(AxesDims.Sum() == HeadDim, nameof(AxesDims), AxesDims.Sum(), $"summing to the head dim {HeadDim}");
        return this;
    }

    private static void Check(bool ok, string name, object value, string allowed)
    {
        if (!ok) throw new ArgumentOutOfRangeException(name, value, $"Transformer config {name} = {value} is invalid; expected {allowed}.");
    }
}
