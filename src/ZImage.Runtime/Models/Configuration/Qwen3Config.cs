using System.Text.Json;
using System.Text.Json.Serialization;

namespace ZImage.Runtime.Models.Configuration;

/// <summary><c>text_encoder/config.json</c> of the Qwen3 text encoder. Absent fields take the transformers defaults.</summary>
public sealed record Qwen3Config
{
    /// <summary><c>architectures</c>.</summary>
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; }

    /// <summary><c>model_type</c> (qwen3).</summary>
    [JsonPropertyName("model_type")] public string? ModelType { get; init; }

    /// <summary><c>hidden_size</c>.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 4096;

    /// <summary><c>intermediate_size</c>: SwiGLU hidden width.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 22016;

    /// <summary><c>num_hidden_layers</c>.</summary>
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 32;

    /// <summary><c>num_attention_heads</c>.</summary>
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 32;

    /// <summary><c>num_key_value_heads</c> (GQA).</summary>
    [JsonPropertyName("num_key_value_heads")] public int NumKeyValueHeads { get; init; } = 32;

    /// <summary><c>head_dim</c>; when absent, <c>hidden_size / num_attention_heads</c>.</summary>
    [JsonPropertyName("head_dim")] public int? HeadDimOverride { get; init; }

    /// <summary>Per-head width (<c>head_dim</c>, which may differ from hidden / heads: Qwen3-4B has 32 × 128 = 4096 ≠ 2560).</summary>
    [JsonIgnore] public int HeadDim => HeadDimOverride ?? HiddenSize / NumAttentionHeads;

    /// <summary><c>rms_norm_eps</c>.</summary>
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;

    /// <summary><c>rope_theta</c>.</summary>
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;

    /// <summary><c>rope_scaling</c>; must be null (no scaling is implemented).</summary>
    [JsonPropertyName("rope_scaling")] public JsonElement? RopeScaling { get; init; }

    /// <summary><c>vocab_size</c>.</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 151936;

    /// <summary><c>tie_word_embeddings</c>.</summary>
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }

    /// <summary><c>attention_bias</c>: q/k/v/o projections carry biases.</summary>
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }

    /// <summary><c>hidden_act</c> (silu).</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "silu";

    /// <summary><c>max_position_embeddings</c>.</summary>
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 32768;

    /// <summary><c>bos_token_id</c>.</summary>
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c>.</summary>
    [JsonPropertyName("eos_token_id")] public int? EosTokenId { get; init; }

    /// <summary><c>torch_dtype</c> the weights were saved in.</summary>
    [JsonPropertyName("torch_dtype")] public string? TorchDType { get; init; }

    /// <summary>Query projection width, heads × head_dim.</summary>
    [JsonIgnore] public int QueryWidth => NumAttentionHeads * HeadDim;

    /// <summary>Key/value projection width, kv-heads × head_dim.</summary>
    [JsonIgnore] public int KeyValueWidth => NumKeyValueHeads * HeadDim;

    /// <summary>
    /// Z-Image uses <c>hidden_states[-2]</c>: the raw output of decoder layer <c>num_hidden_layers − 2</c>, so only
    /// this many layers (0 … num_hidden_layers − 2) have to run.
    /// </summary>
    [JsonIgnore] public int LayersUsedByZImage => NumHiddenLayers - 1;

    /// <summary>Checks that the values are usable; throws naming the field, the value and the allowed range.</summary>
    /// <exception cref="CheckpointConfigurationException">A value is out of range or inconsistent.</exception>
    public Qwen3Config Validate(string source = "text_encoder/config.json")
    {
        ConfigJson.RequireRange(HiddenSize, 1, 1 << 20, source, "hidden_size");
        ConfigJson.RequireRange(IntermediateSize, 1, 1 << 22, source, "intermediate_size");
        ConfigJson.RequireRange(NumHiddenLayers, 2, 1000, source, "num_hidden_layers");
        ConfigJson.RequireRange(NumAttentionHeads, 1, 4096, source, "num_attention_heads");
        ConfigJson.RequireRange(NumKeyValueHeads, 1, NumAttentionHeads, source, "num_key_value_heads");
        ConfigJson.Require(NumAttentionHeads % NumKeyValueHeads == 0, source, "num_key_value_heads",
            $"num_attention_heads {NumAttentionHeads} is not a multiple of num_key_value_heads {NumKeyValueHeads}.");
        ConfigJson.Require(HeadDim > 0 && HeadDim % 2 == 0, source, "head_dim", $"value {HeadDim} must be a positive even number (rotate-half RoPE).");
        ConfigJson.RequireRange(VocabSize, 1, int.MaxValue, source, "vocab_size");
        ConfigJson.RequirePositive(RmsNormEps, source, "rms_norm_eps");
        ConfigJson.RequirePositive(RopeTheta, source, "rope_theta");
        ConfigJson.Require(RopeScaling is null || RopeScaling.Value.ValueKind == JsonValueKind.Null, source, "rope_scaling",
            $"value {RopeScaling?.GetRawText()} is not supported; only null (no RoPE scaling).");
        ConfigJson.Require(HiddenAct == "silu", source, "hidden_act", $"value '{HiddenAct}' is not supported; only 'silu'.");
        return this;
    }
}
