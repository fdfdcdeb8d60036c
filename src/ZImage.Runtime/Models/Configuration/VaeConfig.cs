using System.Text.Json.Serialization;

namespace ZImage.Runtime.Models.Configuration;

/// <summary><c>vae/config.json</c> of <c>AutoencoderKL</c>. Absent fields take the diffusers class defaults.</summary>
public sealed record VaeConfig
{
    /// <summary>Epsilon of every GroupNorm in the decoder (fixed in diffusers, not in the config).</summary>
    public const double GroupNormEps = 1e-6;

    /// <summary><c>_class_name</c> (AutoencoderKL).</summary>
    [JsonPropertyName("_class_name")] public string? ClassName { get; init; }

    /// <summary><c>in_channels</c>: image channels entering the encoder.</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;

    /// <summary><c>out_channels</c>: image channels leaving the decoder.</summary>
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;

    /// <summary><c>down_block_types</c>.</summary>
    [JsonPropertyName("down_block_types")] public IReadOnlyList<string> DownBlockTypes { get; init; } = ["DownEncoderBlock2D"];

    /// <summary><c>up_block_types</c>.</summary>
    [JsonPropertyName("up_block_types")] public IReadOnlyList<string> UpBlockTypes { get; init; } = ["UpDecoderBlock2D"];

    /// <summary><c>block_out_channels</c>, encoder order (the decoder walks it reversed).</summary>
    [JsonPropertyName("block_out_channels")] public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];

    /// <summary><c>layers_per_block</c> (encoder resnets per block; the decoder uses one more).</summary>
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 1;

    /// <summary><c>act_fn</c> (silu).</summary>
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";

    /// <summary><c>latent_channels</c>.</summary>
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 4;

    /// <summary><c>norm_num_groups</c>.</summary>
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;

    /// <summary><c>sample_size</c>.</summary>
    [JsonPropertyName("sample_size")] public int SampleSize { get; init; } = 32;

    /// <summary><c>scaling_factor</c>: decoder input = latents / scaling_factor + shift_factor.</summary>
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = 0.18215;

    /// <summary><c>shift_factor</c> (null means 0).</summary>
    [JsonPropertyName("shift_factor")] public double? ShiftFactor { get; init; }

    /// <summary><c>latents_mean</c> (unused by Z-Image; null there).</summary>
    [JsonPropertyName("latents_mean")] public IReadOnlyList<double>? LatentsMean { get; init; }

    /// <summary><c>latents_std</c> (unused by Z-Image; null there).</summary>
    [JsonPropertyName("latents_std")] public IReadOnlyList<double>? LatentsStd { get; init; }

    /// <summary><c>force_upcast</c> (not consulted by ZImagePipeline).</summary>
    [JsonPropertyName("force_upcast")] public bool ForceUpcast { get; init; } = true;

    /// <summary><c>use_quant_conv</c> (encoder side).</summary>
    [JsonPropertyName("use_quant_conv")] public bool UseQuantConv { get; init; } = true;

    /// <summary><c>use_post_quant_conv</c>: a 1×1 conv before the decoder.</summary>
    [JsonPropertyName("use_post_quant_conv")] public bool UsePostQuantConv { get; init; } = true;

    /// <summary><c>mid_block_add_attention</c>.</summary>
    [JsonPropertyName("mid_block_add_attention")] public bool MidBlockAddAttention { get; init; } = true;

    /// <summary>Resnets per decoder up block (<c>layers_per_block + 1</c>).</summary>
    [JsonIgnore] public int DecoderLayersPerBlock => LayersPerBlock + 1;

    /// <summary>Spatial down/up-sampling factor, <c>2^(blocks − 1)</c> (8 for four blocks).</summary>
    [JsonIgnore] public int SpatialScale => 1 << (BlockOutChannels.Count - 1);

    /// <summary><see cref="ShiftFactor"/> with null read as 0.</summary>
    [JsonIgnore] public double EffectiveShiftFactor => ShiftFactor ?? 0.0;

    /// <summary>Checks that the values are usable; throws naming the field, the value and the allowed range.</summary>
    /// <exception cref="CheckpointConfigurationException">A value is out of range or inconsistent.</exception>
    public VaeConfig Validate(string source = "vae/config.json")
    {
        ConfigJson.Require(BlockOutChannels is { Count: >= 1 and <= 8 }, source, "block_out_channels", $"must list 1 to 8 channel counts.");
        for (int i = 0; i < BlockOutChannels.Count; i++)
        {
            ConfigJson.RequireRange(BlockOutChannels[i], 1, 1 << 16, source, $"block_out_channels[{i}]");
            ConfigJson.Require(BlockOutChannels[i] % NormNumGroups == 0, source, $"block_out_channels[{i}]",
                $"value {BlockOutChannels[i]} is not divisible by norm_num_groups {NormNumGroups}.");
        }
        ConfigJson.RequireRange(NormNumGroups, 1, 1 << 16, source, "norm_num_groups");
        ConfigJson.RequireRange(LayersPerBlock, 1, 64, source, "layers_per_block");
        ConfigJson.RequireRange(LatentChannels, 1, 4096, source, "latent_channels");
        ConfigJson.RequireRange(InChannels, 1, 64, source, "in_channels");
        ConfigJson.RequireRange(OutChannels, 1, 64, source, "out_channels");
        ConfigJson.Require(UpBlockTypes is not null, source, "up_block_types", "must not be null.");
        ConfigJson.Require(UpBlockTypes.Count == BlockOutChannels.Count && UpBlockTypes.All(t => t == "UpDecoderBlock2D"), source, "up_block_types",
            $"[{string.Join(", ", UpBlockTypes)}] is not supported; expected {BlockOutChannels.Count} × UpDecoderBlock2D.");
        ConfigJson.Require(ScalingFactor is > 0 and < double.PositiveInfinity, source, "scaling_factor", $"value {ScalingFactor} must be a finite number > 0.");
        ConfigJson.Require(ShiftFactor is null || double.IsFinite(ShiftFactor.Value), source, "shift_factor", $"value {ShiftFactor} must be finite or null.");
        ConfigJson.Require(ActFn == "silu", source, "act_fn", $"value '{ActFn}' is not supported; only 'silu'.");
        return this;
    }
}
