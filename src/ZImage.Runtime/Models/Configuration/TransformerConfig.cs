using System.Text.Json.Serialization;

namespace ZImage.Runtime.Models.Configuration;

/// <summary>
/// <c>transformer/config.json</c> of <c>ZImageTransformer2DModel</c>. Absent fields take the diffusers class defaults
/// (note the class default <c>axes_lens</c> is [1024,512,512] while the shipped Turbo file says [1536,512,512]).
/// </summary>
public sealed record TransformerConfig
{
    /// <summary>Width of the timestep sinusoid fed to <c>t_embedder</c>.</summary>
    public const int TimestepFrequencyDim = 256;

    /// <summary>Hidden width of the <c>t_embedder</c> MLP.</summary>
    public const int TimestepMidDim = 1024;

    /// <summary>Image and caption token counts are each padded to a multiple of this.</summary>
    public const int SequenceMultiple = 32;

    /// <summary>Epsilon of the final (affine-free) LayerNorm.</summary>
    public const double FinalNormEps = 1e-6;

    /// <summary>Upper bound of the adaLN conditioning width (<c>ADALN_EMBED_DIM</c>).</summary>
    public const int MaxAdaLnEmbedDim = 256;

    /// <summary><c>_class_name</c> (ZImageTransformer2DModel).</summary>
    [JsonPropertyName("_class_name")] public string? ClassName { get; init; }

    /// <summary><c>all_patch_size</c>: spatial patch sizes (Turbo: [2]).</summary>
    [JsonPropertyName("all_patch_size")] public IReadOnlyList<int> AllPatchSize { get; init; } = [2];

    /// <summary><c>all_f_patch_size</c>: frame patch sizes (Turbo: [1]).</summary>
    [JsonPropertyName("all_f_patch_size")] public IReadOnlyList<int> AllFPatchSize { get; init; } = [1];

    /// <summary><c>in_channels</c>: latent channels (also the output channels).</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 16;

    /// <summary><c>dim</c>: model width D.</summary>
    [JsonPropertyName("dim")] public int Dim { get; init; } = 3840;

    /// <summary><c>n_layers</c>: main (joint, modulated) blocks.</summary>
    [JsonPropertyName("n_layers")] public int NLayers { get; init; } = 30;

    /// <summary><c>n_refiner_layers</c>: noise_refiner blocks and, equally many, context_refiner blocks.</summary>
    [JsonPropertyName("n_refiner_layers")] public int NRefinerLayers { get; init; } = 2;

    /// <summary><c>n_heads</c>.</summary>
    [JsonPropertyName("n_heads")] public int NHeads { get; init; } = 30;

    /// <summary><c>n_kv_heads</c> (stored but ignored by diffusers: attention is MHA with <see cref="NHeads"/>).</summary>
    [JsonPropertyName("n_kv_heads")] public int NKvHeads { get; init; } = 30;

    /// <summary><c>norm_eps</c> of every RMSNorm (blocks, q/k norms, cap_embedder).</summary>
    [JsonPropertyName("norm_eps")] public double NormEps { get; init; } = 1e-5;

    /// <summary><c>qk_norm</c>: RMSNorm on q and k per head.</summary>
    [JsonPropertyName("qk_norm")] public bool QkNorm { get; init; } = true;

    /// <summary><c>cap_feat_dim</c>: caption feature width (the text encoder's hidden size).</summary>
    [JsonPropertyName("cap_feat_dim")] public int CapFeatDim { get; init; } = 2560;

    /// <summary><c>rope_theta</c>.</summary>
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 256.0;

    /// <summary><c>t_scale</c>: model time is multiplied by this before the sinusoid.</summary>
    [JsonPropertyName("t_scale")] public double TScale { get; init; } = 1000.0;

    /// <summary><c>axes_dims</c>: RoPE width per axis (frame, height, width); sums to <see cref="HeadDim"/>.</summary>
    [JsonPropertyName("axes_dims")] public IReadOnlyList<int> AxesDims { get; init; } = [32, 48, 48];

    /// <summary><c>axes_lens</c>: RoPE table length per axis.</summary>
    [JsonPropertyName("axes_lens")] public IReadOnlyList<int> AxesLens { get; init; } = [1024, 512, 512];

    /// <summary>The (single) spatial patch size, <c>all_patch_size[0]</c>.</summary>
    [JsonIgnore] public int PatchSize => AllPatchSize[0];

    /// <summary>The (single) frame patch size, <c>all_f_patch_size[0]</c>.</summary>
    [JsonIgnore] public int FPatchSize => AllFPatchSize[0];

    /// <summary>Per-head width, <c>dim / n_heads</c>.</summary>
    [JsonIgnore] public int HeadDim => Dim / NHeads;

    /// <summary>
    /// SwiGLU hidden width, <c>int(dim / 3 * 8)</c> evaluated in double as Python does (3840 → 10240; the tiny
    /// checkpoint's 64 → 170, matching its <c>feed_forward.w1</c> shape [170, 64]).
    /// </summary>
    [JsonIgnore] public int FfnHidden => (int)(Dim / 3.0 * 8);

    /// <summary>Width of the conditioning vector <c>c</c>, <c>min(dim, 256)</c>.</summary>
    [JsonIgnore] public int AdaLnEmbedDim => Math.Min(Dim, MaxAdaLnEmbedDim);

    /// <summary>Output channels (equal to <see cref="InChannels"/>).</summary>
    [JsonIgnore] public int OutChannels => InChannels;

    /// <summary>Length of one patch vector, <c>f_patch · patch² · in_channels</c> (Turbo: 64).</summary>
    [JsonIgnore] public int PatchFeatureDim => FPatchSize * PatchSize * PatchSize * InChannels;

    /// <summary>Checks that the values are usable; throws naming the field, the value and the allowed range.</summary>
    /// <param name="source">The file the config came from, for the message.</param>
    /// <exception cref="CheckpointConfigurationException">A value is out of range or inconsistent.</exception>
    public TransformerConfig Validate(string source = "transformer/config.json")
    {
        ConfigJson.RequireRange(Dim, 1, 1 << 20, source, "dim");
        ConfigJson.RequireRange(NHeads, 1, Dim, source, "n_heads");
        ConfigJson.Require(Dim % NHeads == 0, source, "n_heads", $"dim {Dim} is not divisible by n_heads {NHeads}.");
        ConfigJson.RequireRange(NKvHeads, 1, NHeads, source, "n_kv_heads");
        ConfigJson.RequireRange(NLayers, 1, 1000, source, "n_layers");
        ConfigJson.RequireRange(NRefinerLayers, 0, 1000, source, "n_refiner_layers");
        ConfigJson.RequireRange(InChannels, 1, 4096, source, "in_channels");
        ConfigJson.RequireRange(CapFeatDim, 1, 1 << 20, source, "cap_feat_dim");
        ConfigJson.Require(AllPatchSize is { Count: > 0 }, source, "all_patch_size", "must list at least one patch size.");
        ConfigJson.Require(AllFPatchSize is not null, source, "all_f_patch_size", "must not be null.");
        ConfigJson.Require(AllFPatchSize.Count == AllPatchSize.Count, source, "all_f_patch_size",
            $"has {AllFPatchSize.Count} entries; it must pair one-to-one with all_patch_size ({AllPatchSize.Count}).");
        for (int i = 0; i < AllPatchSize.Count; i++)
        {
            ConfigJson.RequireRange(AllPatchSize[i], 1, 64, source, $"all_patch_size[{i}]");
            ConfigJson.RequireRange(AllFPatchSize[i], 1, 64, source, $"all_f_patch_size[{i}]");
        }
        ConfigJson.RequirePositive(NormEps, source, "norm_eps");
        ConfigJson.RequirePositive(RopeTheta, source, "rope_theta");
        ConfigJson.RequirePositive(TScale, source, "t_scale");
        ConfigJson.Require(AxesDims is { Count: 3 }, source, "axes_dims", "must list 3 widths (frame, height, width).");
        ConfigJson.Require(AxesLens is { Count: 3 }, source, "axes_lens", "must list 3 lengths (frame, height, width).");
        for (int i = 0; i < 3; i++)
        {
            ConfigJson.Require(AxesDims[i] > 0 && AxesDims[i] % 2 == 0, source, $"axes_dims[{i}]", $"value {AxesDims[i]} must be a positive even number (RoPE rotates pairs).");
            ConfigJson.RequireRange(AxesLens[i], 1, 1 << 20, source, $"axes_lens[{i}]");
        }
        ConfigJson.Require(AxesDims.Sum() == HeadDim, source, "axes_dims", $"sum {AxesDims.Sum()} must equal head_dim = dim / n_heads = {HeadDim}.");
        return this;
    }
}
