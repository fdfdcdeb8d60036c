using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Models.Configuration;

/// <summary>A weight the architecture needs: its key and the shapes it may be stored in (the first is canonical).</summary>
/// <param name="Name">Checkpoint key.</param>
/// <param name="AcceptedShapes">Accepted shapes; more than one only where formats legitimately differ (1×1 conv vs linear).</param>
public sealed record ExpectedWeight(string Name, IReadOnlyList<int[]> AcceptedShapes)
{
    /// <summary>The canonical shape (the one the model code uses).</summary>
    public int[] Shape => AcceptedShapes[0];

    /// <summary>True when <paramref name="shape"/> is one of <see cref="AcceptedShapes"/>.</summary>
    public bool Accepts(ReadOnlySpan<int> shape)
    {
        foreach (int[] s in AcceptedShapes)
            if (shape.SequenceEqual(s)) return true;
        return false;
    }
}

/// <summary>Every weight one component needs, plus key prefixes that are known but unused for text-to-image.</summary>
/// <param name="Component">Component folder (transformer, text_encoder, vae).</param>
/// <param name="Weights">Expected weights in model order.</param>
/// <param name="KnownUnusedPrefixes">Key prefixes that may be present and are ignored (e.g. <c>encoder.</c> in the VAE).</param>
public sealed record ComponentWeightSpec(string Component, IReadOnlyList<ExpectedWeight> Weights, IReadOnlyList<string> KnownUnusedPrefixes)
{
    /// <summary>Expected names → canonical shapes.</summary>
    public IReadOnlyDictionary<string, int[]> ToDictionary() => Weights.ToDictionary(w => w.Name, w => w.Shape, StringComparer.Ordinal);

    /// <summary>Total elements of the canonical shapes (parameter count).</summary>
    public long ParameterCount => Weights.Sum(w => w.Shape.Aggregate(1L, (a, d) => a * d));

    /// <summary>Compares <paramref name="reader"/>'s tensors with this spec (names, shapes, float dtypes).</summary>
    public ComponentValidationResult Validate(ISafetensorsReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var expected = Weights.ToDictionary(w => w.Name, StringComparer.Ordinal);
        var missing = new List<string>();
        var mismatches = new List<WeightShapeMismatch>();
        foreach (ExpectedWeight w in Weights)
        {
            if (!reader.TryGetInfo(w.Name, out SafetensorsTensorInfo? info)) missing.Add(w.Name);
            else if (!w.Accepts(info.Shape) || !info.DType.IsFloatingPoint())
                mismatches.Add(new WeightShapeMismatch(Component, w.Name, w.AcceptedShapes, info.Shape, info.DType));
        }
        var unexpected = new List<string>();
        var knownUnused = new List<string>();
        foreach (string name in reader.TensorNames)
        {
            if (expected.ContainsKey(name)) continue;
            if (KnownUnusedPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))) knownUnused.Add(name);
            else unexpected.Add(name);
        }
        return new ComponentValidationResult(Component, missing, unexpected, mismatches, knownUnused);
    }
}

/// <summary>
/// Generates every weight key and shape a Z-Image checkpoint must hold, from the component configs (diffusers /
/// transformers naming; see the architecture spec §3.2, §4, §5.1).
/// </summary>
public static class ZImageWeightNames
{
    /// <summary>
    /// <c>ZImageTransformer2DModel</c>: embedders, pad tokens, final layer, then <c>noise_refiner.*</c> (modulated),
    /// <c>context_refiner.*</c> (no adaLN) and <c>layers.*</c> (modulated). Turbo: 521 tensors.
    /// </summary>
    public static ComponentWeightSpec Transformer(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int d = config.Dim, ada = config.AdaLnEmbedDim;
        var w = new List<ExpectedWeight>();
        void Add(string name, params int[] shape) => w.Add(new ExpectedWeight(name, [shape]));

        for (int i = 0; i < config.AllPatchSize.Count; i++)
        {
            int p = config.AllPatchSize[i], f = config.AllFPatchSize[i];
            string key = $"{p}-{f}";
            int patchVec = f * p * p * config.InChannels;
            Add($"all_x_embedder.{key}.weight", d, patchVec);
            Add($"all_x_embedder.{key}.bias", d);
            Add($"all_final_layer.{key}.adaLN_modulation.1.weight", d, ada);
            Add($"all_final_layer.{key}.adaLN_modulation.1.bias", d);
            Add($"all_final_layer.{key}.linear.weight", p * p * f * config.OutChannels, d);
            Add($"all_final_layer.{key}.linear.bias", p * p * f * config.OutChannels);
        }
        Add("t_embedder.mlp.0.weight", TransformerConfig.TimestepMidDim, TransformerConfig.TimestepFrequencyDim);
        Add("t_embedder.mlp.0.bias", TransformerConfig.TimestepMidDim);
        Add("t_embedder.mlp.2.weight", ada, TransformerConfig.TimestepMidDim);
        Add("t_embedder.mlp.2.bias", ada);
        Add("cap_embedder.0.weight", config.CapFeatDim);
        Add("cap_embedder.1.weight", d, config.CapFeatDim);
        Add("cap_embedder.1.bias", d);
        Add("x_pad_token", 1, d);
        Add("cap_pad_token", 1, d);

        for (int i = 0; i < config.NRefinerLayers; i++) AddBlock(w, config, $"noise_refiner.{i}", modulated: true);
        for (int i = 0; i < config.NRefinerLayers; i++) AddBlock(w, config, $"context_refiner.{i}", modulated: false);
        for (int i = 0; i < config.NLayers; i++) AddBlock(w, config, $"layers.{i}", modulated: true);
        return new ComponentWeightSpec(ZImageConfig.TransformerFolder, w, []);
    }

    private static void AddBlock(List<ExpectedWeight> w, TransformerConfig c, string prefix, bool modulated)
    {
        int d = c.Dim, f = c.FfnHidden, qkv = c.NHeads * c.HeadDim;
        void Add(string name, params int[] shape) => w.Add(new ExpectedWeight($"{prefix}.{name}", [shape]));
        Add("attention.to_q.weight", qkv, d);
        Add("attention.to_k.weight", qkv, d);
        Add("attention.to_v.weight", qkv, d);
        Add("attention.to_out.0.weight", d, qkv);
        if (c.QkNorm)
        {
            Add("attention.norm_q.weight", c.HeadDim);
            Add("attention.norm_k.weight", c.HeadDim);
        }
        Add("feed_forward.w1.weight", f, d);
        Add("feed_forward.w2.weight", d, f);
        Add("feed_forward.w3.weight", f, d);
        Add("attention_norm1.weight", d);
        Add("attention_norm2.weight", d);
        Add("ffn_norm1.weight", d);
        Add("ffn_norm2.weight", d);
        if (modulated)
        {
            Add("adaLN_modulation.0.weight", 4 * d, c.AdaLnEmbedDim);
            Add("adaLN_modulation.0.bias", 4 * d);
        }
    }

    /// <summary>
    /// Qwen3 text encoder as stored (<c>model.</c> prefix): embeddings, every layer 0 … N−1 and <c>model.norm</c>.
    /// <c>lm_head.*</c> (present in causal-LM exports) is known but unused. Turbo: 398 tensors.
    /// </summary>
    public static ComponentWeightSpec TextEncoder(Qwen3Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int h = config.HiddenSize, q = config.QueryWidth, kv = config.KeyValueWidth, m = config.IntermediateSize;
        var w = new List<ExpectedWeight>();
        void Add(string name, params int[] shape) => w.Add(new ExpectedWeight(name, [shape]));
        Add("model.embed_tokens.weight", config.VocabSize, h);
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}";
            Add($"{p}.input_layernorm.weight", h);
            Add($"{p}.self_attn.q_proj.weight", q, h);
            Add($"{p}.self_attn.k_proj.weight", kv, h);
            Add($"{p}.self_attn.v_proj.weight", kv, h);
            Add($"{p}.self_attn.o_proj.weight", h, q);
            if (config.AttentionBias)
            {
                Add($"{p}.self_attn.q_proj.bias", q);
                Add($"{p}.self_attn.k_proj.bias", kv);
                Add($"{p}.self_attn.v_proj.bias", kv);
                Add($"{p}.self_attn.o_proj.bias", h);
            }
            Add($"{p}.self_attn.q_norm.weight", config.HeadDim);
            Add($"{p}.self_attn.k_norm.weight", config.HeadDim);
            Add($"{p}.post_attention_layernorm.weight", h);
            Add($"{p}.mlp.gate_proj.weight", m, h);
            Add($"{p}.mlp.up_proj.weight", m, h);
            Add($"{p}.mlp.down_proj.weight", h, m);
        }
        Add("model.norm.weight", h);
        return new ComponentWeightSpec(ZImageConfig.TextEncoderFolder, w, ["lm_head."]);
    }

    /// <summary>
    /// <c>AutoencoderKL</c> decoder keys (plus <c>post_quant_conv</c> when configured). <c>encoder.*</c> and
    /// <c>quant_conv.*</c> are known but unused. Mid-block attention projections may be stored as Linear
    /// <c>[C,C]</c> (diffusers) or conv-shaped <c>[C,C,1,1]</c> (older exports). Turbo: 138 tensors.
    /// </summary>
    public static ComponentWeightSpec Vae(VaeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var w = new List<ExpectedWeight>();
        void Add(string name, params int[] shape) => w.Add(new ExpectedWeight(name, [shape]));
        int[] rev = config.BlockOutChannels.Reverse().ToArray();
        int top = rev[0], lat = config.LatentChannels;

        if (config.UsePostQuantConv)
        {
            Add("post_quant_conv.weight", lat, lat, 1, 1);
            Add("post_quant_conv.bias", lat);
        }
        Add("decoder.conv_in.weight", top, lat, 3, 3);
        Add("decoder.conv_in.bias", top);
        AddResnet(w, "decoder.mid_block.resnets.0", top, top);
        if (config.MidBlockAddAttention)
        {
            const string a = "decoder.mid_block.attentions.0";
            Add($"{a}.group_norm.weight", top);
            Add($"{a}.group_norm.bias", top);
            foreach (string proj in new[] { "to_q", "to_k", "to_v", "to_out.0" })
            {
                w.Add(new ExpectedWeight($"{a}.{proj}.weight", [[top, top], [top, top, 1, 1]]));
                Add($"{a}.{proj}.bias", top);
            }
        }
        AddResnet(w, "decoder.mid_block.resnets.1", top, top);

        int prev = top;
        for (int b = 0; b < rev.Length; b++)
        {
            int output = rev[b];
            for (int r = 0; r < config.DecoderLayersPerBlock; r++)
                AddResnet(w, $"decoder.up_blocks.{b}.resnets.{r}", r == 0 ? prev : output, output);
            if (b < rev.Length - 1)
            {
                Add($"decoder.up_blocks.{b}.upsamplers.0.conv.weight", output, output, 3, 3);
                Add($"decoder.up_blocks.{b}.upsamplers.0.conv.bias", output);
            }
            prev = output;
        }
        int bottom = config.BlockOutChannels[0];
        Add("decoder.conv_norm_out.weight", bottom);
        Add("decoder.conv_norm_out.bias", bottom);
        Add("decoder.conv_out.weight", config.OutChannels, bottom, 3, 3);
        Add("decoder.conv_out.bias", config.OutChannels);
        return new ComponentWeightSpec(ZImageConfig.VaeFolder, w, ["encoder.", "quant_conv."]);
    }

    private static void AddResnet(List<ExpectedWeight> w, string p, int cin, int cout)
    {
        void Add(string name, params int[] shape) => w.Add(new ExpectedWeight($"{p}.{name}", [shape]));
        Add("norm1.weight", cin);
        Add("norm1.bias", cin);
        Add("conv1.weight", cout, cin, 3, 3);
        Add("conv1.bias", cout);
        Add("norm2.weight", cout);
        Add("norm2.bias", cout);
        Add("conv2.weight", cout, cout, 3, 3);
        Add("conv2.bias", cout);
        if (cin != cout)
        {
            Add("conv_shortcut.weight", cout, cin, 1, 1);
            Add("conv_shortcut.bias", cout);
        }
    }

    /// <summary>The three weight-bearing component specs of <paramref name="config"/>.</summary>
    public static IReadOnlyList<ComponentWeightSpec> All(ZImageConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return [Transformer(config.Transformer), TextEncoder(config.TextEncoder), Vae(config.Vae)];
    }
}
