using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Residency;

namespace ZImage.Runtime.Models.TextEncoder;

/// <summary>
/// The Qwen3 text encoder as Z-Image uses it: token ids → <c>hidden_states[-2]</c>, i.e. the raw output of decoder
/// layer <c>num_hidden_layers − 2</c> without the final norm (the last layer is never run and its weights are never
/// loaded). The embedding table stays in host memory and only the requested rows are gathered and uploaded. All
/// per-layer weights are fetched from the <see cref="IWeightProvider"/> once, at construction; <see cref="Encode"/>
/// allocates only activations (tag <see cref="AllocationTags.TextEncoder"/>) and frees each as soon as it is dead,
/// so a planning run makes exactly the allocations of a real one.
/// </summary>
public sealed class Qwen3TextEncoder : IDisposable
{
    /// <summary>The key prefix of the diffusers/transformers text-encoder checkpoint (<c>model.layers.0...</c>).</summary>
    public const string DefaultKeyPrefix = "model.";

    private readonly ComputeContext _context;
    private readonly IWeightProvider _weights;
    private readonly string _prefix;
    private readonly Layer[] _layers;
    private readonly LayerRing<Layer>? _ring;
    private readonly float[] _invFreq;

    /// <summary>Fetches the weights of layers 0 .. <c>num_hidden_layers − 2</c> and prepares the RoPE frequencies.</summary>
    /// <param name="config">The text encoder's <c>config.json</c>.</param>
    /// <param name="weights">Weight source (checkpoint or planning); owns the weight tensors.</param>
    /// <param name="context">Allocator and ops for activations.</param>
    /// <param name="keyPrefix">Prefix of every checkpoint key (default <see cref="DefaultKeyPrefix"/>; "" for a bare <c>Qwen3Model</c> state dict).</param>
    /// <param name="placement">Resident layers (default), or layers streamed through a ring of two device slots (needs an <see cref="IStreamableWeights"/> provider).</param>
    /// <exception cref="ArgumentOutOfRangeException">A config value is outside what the architecture allows.</exception>
    public Qwen3TextEncoder(Qwen3Config config, IWeightProvider weights, ComputeContext context, string keyPrefix = DefaultKeyPrefix,
        LayerPlacement placement = LayerPlacement.Resident)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(keyPrefix);
        Validate(config);
        Config = config;
        _weights = weights;
        _context = context;
        _prefix = keyPrefix;
        HeadDim = config.HeadDim;
        _invFreq = InverseFrequencies(config.RopeTheta, HeadDim);

        int count = config.NumHiddenLayers - 1;
        if (placement == LayerPlacement.Streamed)
        {
            var source = weights as IStreamableWeights
                ?? throw new ArgumentException($"Streaming the text-encoder layers needs an {nameof(IStreamableWeights)} provider; {weights.GetType().Name} is not one.", nameof(weights));
            _ring = new LayerRing<Layer>(source, context.Allocator, count, (w, i) => BuildLayer(w, config, keyPrefix, i), ops: context.Ops);
            _layers = [];
        }
        else
        {
            _layers = new Layer[count];
            for (int i = 0; i < _layers.Length; i++) _layers[i] = BuildLayer(weights, config, keyPrefix, i);
        }
    }

    private static Layer BuildLayer(IWeightProvider weights, Qwen3Config config, string keyPrefix, int i)
    {
        int hidden = config.HiddenSize, dh = config.HeadDim;
        int qDim = config.NumAttentionHeads * dh, kvDim = config.NumKeyValueHeads * dh, inter = config.IntermediateSize;
        string p = $"{keyPrefix}layers.{i}.";
        Tensor? Bias(string name, int width) => config.AttentionBias ? weights.Vector(p + name, width) : null;
        return new Layer(
            InputNorm: weights.Vector(p + "input_layernorm.weight", hidden),
            Q: weights.Matrix(p + "self_attn.q_proj.weight", qDim, hidden),
            K: weights.Matrix(p + "self_attn.k_proj.weight", kvDim, hidden),
            V: weights.Matrix(p + "self_attn.v_proj.weight", kvDim, hidden),
            O: weights.Matrix(p + "self_attn.o_proj.weight", hidden, qDim),
            QNorm: weights.Vector(p + "self_attn.q_norm.weight", dh),
            KNorm: weights.Vector(p + "self_attn.k_norm.weight", dh),
            PostNorm: weights.Vector(p + "post_attention_layernorm.weight", hidden),
            Gate: weights.Matrix(p + "mlp.gate_proj.weight", inter, hidden),
            Up: weights.Matrix(p + "mlp.up_proj.weight", inter, hidden),
            Down: weights.Matrix(p + "mlp.down_proj.weight", hidden, inter),
            QBias: Bias("self_attn.q_proj.bias", qDim),
            KBias: Bias("self_attn.k_proj.bias", kvDim),
            VBias: Bias("self_attn.v_proj.bias", kvDim),
            OBias: Bias("self_attn.o_proj.bias", hidden));
    }

    /// <summary>Where the decoder layers live (resident, or streamed through a ring of device slots).</summary>
    public LayerPlacement Placement => _ring is null ? LayerPlacement.Resident : LayerPlacement.Streamed;

    /// <summary>The ring's host bytes, device bytes and bytes uploaded so far (all zero when resident).</summary>
    public RingReport Streaming => RingReport.Of(_ring);

    /// <summary>Releases the streaming slots (resident weights belong to the provider).</summary>
    public void Dispose() => _ring?.Dispose();

    /// <summary>The configuration the encoder was built from.</summary>
    public Qwen3Config Config { get; }

    /// <summary>Width of one attention head.</summary>
    public int HeadDim { get; }

    /// <summary>Width of the output features (<c>hidden_size</c>).</summary>
    public int HiddenSize => Config.HiddenSize;

    /// <summary>How many decoder layers run (<c>num_hidden_layers − 1</c>).</summary>
    public int LayersRun => _ring?.LayerCount ?? _layers.Length;

    /// <summary>
    /// Encodes the real (unpadded) tokens of one prompt. With the pipeline's right padding and causal attention, the
    /// rows of the real tokens are identical to the padded run, so padding is never needed.
    /// </summary>
    /// <param name="ids">Token ids, positions 0 .. L−1; 1 ≤ L, each id in [0, vocab_size).</param>
    /// <returns><c>hidden_states[-2]</c> as <c>[L, hidden_size]</c> F32 with tag <see cref="AllocationTags.TextEncoder"/>; the caller disposes it.</returns>
    /// <exception cref="ArgumentOutOfRangeException">ids is empty or holds an id outside the vocabulary.</exception>
    public Tensor Encode(ReadOnlySpan<int> ids)
    {
        if (ids.Length < 1)
            throw new ArgumentOutOfRangeException(nameof(ids), ids.Length, "At least one token id is required.");
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                ThrowBadId(i, ids[i], Config.VocabSize);
        }

        const string tag = AllocationTags.TextEncoder;
        var ops = _context.Ops;
        int l = ids.Length, hidden = Config.HiddenSize, dh = HeadDim;
        int hq = Config.NumAttentionHeads, hkv = Config.NumKeyValueHeads, inter = Config.IntermediateSize;
        float eps = (float)Config.RmsNormEps;
        float scale = (float)(1.0 / Math.Sqrt(dh));

        var (cosHost, sinHost) = RopeTables(l);
        // Every tensor is released on any failure (an allocation or a kernel), so a failed request leaves nothing allocated.
        Tensor cos = _context.Empty(tag, l, dh);
        Tensor? sin = null, x = null;
        try
        {
            sin = _context.Empty(tag, l, dh);
            x = _context.Empty(tag, l, hidden);
            ops.Upload(cosHost, cos);
            ops.Upload(sinHost, sin);
            ops.Upload(_weights.GatherRows(_prefix + "embed_tokens.weight", ids, hidden), x);

            for (int li = 0; li < LayersRun; li++)
            {
                var layer = _ring is null ? _layers[li] : _ring.Get(li);
                // Attention: x += o_proj(attn(rope(q_norm(q)), rope(k_norm(k)), v))
                Tensor? q = null, k = null, v = null;
                using (var h = _context.Empty(tag, l, hidden))
                {
                    try
                    {
                        ops.RmsNorm(x, layer.InputNorm, eps, h);
                        q = _context.Empty(tag, l, hq * dh);
                        k = _context.Empty(tag, l, hkv * dh);
                        v = _context.Empty(tag, l, hkv * dh);
                        ops.Linear(h, layer.Q, layer.QBias, q);
                        ops.Linear(h, layer.K, layer.KBias, k);
                        ops.Linear(h, layer.V, layer.VBias, v);
                    }
                    catch
                    {
                        q?.Dispose(); k?.Dispose(); v?.Dispose();
                        throw;
                    }
                }

                Tensor a;
                using (q)
                using (k)
                using (v)
                {
                    // Per-head RMSNorm over head_dim: view the projections as rows of head_dim.
                    ops.RmsNorm(q.Reshape(l * hq, dh), layer.QNorm, eps, q.Reshape(l * hq, dh));
                    ops.RmsNorm(k.Reshape(l * hkv, dh), layer.KNorm, eps, k.Reshape(l * hkv, dh));
                    var q3 = q.Reshape(l, hq, dh);
                    var k3 = k.Reshape(l, hkv, dh);
                    ops.RopeRotateHalf(q3, k3, cos, sin);
                    a = _context.Empty(tag, l, hq, dh);
                    try { ops.Attention(q3, k3, v.Reshape(l, hkv, dh), scale, causal: true, a); }
                    catch { a.Dispose(); throw; }
                }

                using (a)
                using (var o = _context.Empty(tag, l, hidden))
                {
                    ops.Linear(a.Reshape(l, hq * dh), layer.O, layer.OBias, o);
                    ops.Add(x, o, x);
                }

                // MLP: x += down(SiLU(gate(h)) ⊙ up(h)), h = post_attention_layernorm(x)
                Tensor? gate = null, up = null;
                using (var h = _context.Empty(tag, l, hidden))
                {
                    try
                    {
                        ops.RmsNorm(x, layer.PostNorm, eps, h);
                        gate = _context.Empty(tag, l, inter);
                        up = _context.Empty(tag, l, inter);
                        ops.Linear(h, layer.Gate, null, gate);
                        ops.Linear(h, layer.Up, null, up);
                    }
                    catch
                    {
                        gate?.Dispose(); up?.Dispose();
                        throw;
                    }
                }

                using (gate)
                {
                    using (up) ops.SwiGlu(gate, up, gate);
                    using var down = _context.Empty(tag, l, hidden);
                    ops.Linear(gate, layer.Down, null, down);
                    ops.Add(x, down, x);
                }
            }
        }
        catch
        {
            x?.Dispose();
            throw;
        }
        finally
        {
            sin?.Dispose();
            cos.Dispose();
        }
        return x;
    }

    /// <summary>
    /// HF's default RoPE frequencies, evaluated in float32 as torch does:
    /// <c>1.0 / (theta ** (arange(0, dim, 2).float() / dim))</c>.
    /// </summary>
    internal static float[] InverseFrequencies(double theta, int headDim)
    {
        var inv = new float[headDim / 2];
        float b = (float)theta;
        for (int k = 0; k < inv.Length; k++)
        {
            float exponent = (2f * k) / headDim;
            inv[k] = 1f / MathF.Pow(b, exponent);
        }
        return inv;
    }

    /// <summary>cos/sin tables <c>[L, head_dim]</c> (halves repeated, as HF's <c>cat(freqs, freqs)</c>), angle rounded to float32 first.</summary>
    internal (float[] Cos, float[] Sin) RopeTables(int length)
    {
        int dh = HeadDim, half = dh / 2;
        var cos = new float[length * dh];
        var sin = new float[length * dh];
        for (int p = 0; p < length; p++)
        {
            for (int k = 0; k < half; k++)
            {
                float angle = p * _invFreq[k];
                float c = (float)Math.Cos(angle), s = (float)Math.Sin(angle);
                cos[p * dh + k] = c;
                cos[p * dh + k + half] = c;
                sin[p * dh + k] = s;
                sin[p * dh + k + half] = s;
            }
        }
        return (cos, sin);
    }

    private static void Validate(Qwen3Config c)
    {
        Positive(c.HiddenSize, "hidden_size");
        Positive(c.IntermediateSize, "intermediate_size");
        Positive(c.NumAttentionHeads, "num_attention_heads");
        Positive(c.NumKeyValueHeads, "num_key_value_heads");
        Positive(c.VocabSize, "vocab_size");
        if (c.HeadDim < 2 || c.HeadDim % 2 != 0)
            throw new ArgumentOutOfRangeException("head_dim", c.HeadDim, "head_dim must be an even number ≥ 2 (rotate-half RoPE).");
        if (c.NumHiddenLayers < 2)
            throw new ArgumentOutOfRangeException("num_hidden_layers", c.NumHiddenLayers, "num_hidden_layers must be ≥ 2: Z-Image reads hidden_states[-2].");
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new ArgumentOutOfRangeException("num_key_value_heads", c.NumKeyValueHeads, $"num_key_value_heads must divide num_attention_heads ({c.NumAttentionHeads}).");
        if (!(c.RmsNormEps > 0) || double.IsInfinity(c.RmsNormEps))
            throw new ArgumentOutOfRangeException("rms_norm_eps", c.RmsNormEps, "rms_norm_eps must be a finite value > 0.");
        if (!(c.RopeTheta > 1) || double.IsInfinity(c.RopeTheta))
            throw new ArgumentOutOfRangeException("rope_theta", c.RopeTheta, "rope_theta must be a finite value > 1.");

        static void Positive(int value, string name)
        {
            if (value < 1) throw new ArgumentOutOfRangeException(name, value, $"{name} must be ≥ 1.");
        }
    }

    private static void ThrowBadId(int index, int id, int vocab) =>
        throw new ArgumentOutOfRangeException("ids", id, $"Token id {id} at position {index} is outside the vocabulary [0, {vocab}).");

    /// <summary>One decoder layer's weights; the projection biases exist only with <c>attention_bias</c> (false for Qwen3-4B).</summary>
    private sealed record Layer(Tensor InputNorm, Tensor Q, Tensor K, Tensor V, Tensor O, Tensor QNorm, Tensor KNorm,
        Tensor PostNorm, Tensor Gate, Tensor Up, Tensor Down, Tensor? QBias, Tensor? KBias, Tensor? VBias, Tensor? OBias);
}
