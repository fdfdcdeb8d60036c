using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;

namespace ZImage.Runtime.Models.Vae;

/// <summary>
/// The decoder half of diffusers' <c>AutoencoderKL</c> (the FLUX.1 VAE in Z-Image): latents → image before clamping.
/// Block order is diffusers': <c>conv_in</c>; mid block (resnet, single-head attention, resnet); up blocks over the
/// REVERSED <c>block_out_channels</c>, each with <c>layers_per_block + 1</c> resnets and, except the last, a nearest 2×
/// upsample followed by a 3×3 conv (fused: the upsampled tensor is never materialised); <c>conv_norm_out</c> + SiLU; <c>conv_out</c>. GroupNorm eps is 1e-6 everywhere.
/// All weights are fetched once at construction; <see cref="Decode(Tensor)"/> allocates only activations (tag
/// <see cref="AllocationTags.Vae"/>) and frees each as soon as it is dead.
/// </summary>
public sealed partial class VaeDecoder
{
    /// <summary>The key prefix of the decoder in a diffusers <c>AutoencoderKL</c> checkpoint.</summary>
    public const string DefaultKeyPrefix = "decoder.";

    /// <summary>GroupNorm epsilon of every norm in the diffusers decoder (hard-coded there, not in the config).</summary>
    public const float GroupNormEps = (float)VaeConfig.GroupNormEps;

    private readonly ComputeContext _context;
    private readonly Conv? _postQuantConv;
    private readonly Conv _convIn;
    private readonly Resnet _midResnet0;
    private readonly Attention? _midAttention;
    private readonly Resnet _midResnet1;
    private readonly UpBlock[] _upBlocks;
    private readonly Tensor _normOutGamma;
    private readonly Tensor _normOutBeta;
    private readonly Conv _convOut;

    /// <summary>Fetches the decoder weights.</summary>
    /// <param name="config">The VAE's <c>config.json</c>.</param>
    /// <param name="weights">Weight source (checkpoint or planning); owns the weight tensors.</param>
    /// <param name="context">Allocator and ops for activations.</param>
    /// <param name="keyPrefix">Prefix of every decoder key (default <see cref="DefaultKeyPrefix"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException">A config value is outside what the architecture allows.</exception>
    public VaeDecoder(VaeConfig config, IWeightProvider weights, ComputeContext context, string keyPrefix = DefaultKeyPrefix)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(keyPrefix);
        Validate(config);
        Config = config;
        _context = context;
        Groups = config.NormNumGroups;

        int[] channels = config.BlockOutChannels.Reverse().ToArray();
        int top = channels[0];
        if (config.UsePostQuantConv)
        {
            // post_quant_conv sits beside the decoder in AutoencoderKL (key "post_quant_conv", not "decoder.…").
            string root = keyPrefix.EndsWith(DefaultKeyPrefix, StringComparison.Ordinal) ? keyPrefix[..^DefaultKeyPrefix.Length] : "";
            _postQuantConv = Conv.Load(weights, root + "post_quant_conv", config.LatentChannels, config.LatentChannels, 1);
        }
        _convIn = Conv.Load(weights, keyPrefix + "conv_in", top, config.LatentChannels, 3);
        _midResnet0 = Resnet.Load(weights, keyPrefix + "mid_block.resnets.0", top, top);
        _midAttention = config.MidBlockAddAttention ? Attention.Load(weights, keyPrefix + "mid_block.attentions.0", top) : null;
        _midResnet1 = Resnet.Load(weights, keyPrefix + "mid_block.resnets.1", top, top);

        _upBlocks = new UpBlock[channels.Length];
        int prev = top;
        for (int b = 0; b < channels.Length; b++)
        {
            string p = $"{keyPrefix}up_blocks.{b}.";
            int cout = channels[b];
            var resnets = new Resnet[config.LayersPerBlock + 1];
            for (int r = 0; r < resnets.Length; r++)
                resnets[r] = Resnet.Load(weights, $"{p}resnets.{r}", r == 0 ? prev : cout, cout);
            bool last = b == channels.Length - 1;
            _upBlocks[b] = new UpBlock(resnets, last ? null : Conv.Load(weights, p + "upsamplers.0.conv", cout, cout, 3));
            prev = cout;
        }

        int bottom = channels[^1];
        _normOutGamma = weights.Vector(keyPrefix + "conv_norm_out.weight", bottom);
        _normOutBeta = weights.Vector(keyPrefix + "conv_norm_out.bias", bottom);
        _convOut = Conv.Load(weights, keyPrefix + "conv_out", config.OutChannels, bottom, 3);
        UpscaleFactor = 1 << (channels.Length - 1);
    }

    /// <summary>The configuration the decoder was built from.</summary>
    public VaeConfig Config { get; }

    /// <summary>GroupNorm group count (<c>norm_num_groups</c>).</summary>
    public int Groups { get; }

    /// <summary>Output pixels per latent pixel along each axis (8 for four blocks).</summary>
    public int UpscaleFactor { get; }

    /// <summary>
    /// Decodes latents: applies <c>z / scaling_factor + shift_factor</c>, then <c>post_quant_conv</c> when the config
    /// enables it (not in Z-Image's VAE), then the decoder.
    /// </summary>
    /// <param name="latents">F32 <c>[C,Hl,Wl]</c> with C = <c>latent_channels</c> (also accepted: <c>[1,C,Hl,Wl]</c> and <c>[C,1,Hl,Wl]</c>, same memory layout). Not modified or disposed.</param>
    /// <returns>The image <c>[out_channels, f·Hl, f·Wl]</c> F32 before clamping (roughly −1..1), tag <see cref="AllocationTags.Vae"/>; the caller disposes it.</returns>
    /// <exception cref="TensorShapeException">latents is not F32 or has another shape.</exception>
    public Tensor Decode(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        var (hl, wl) = LatentSize(latents);
        return DecodeDenormalized(Denormalize(latents, hl, wl));
    }

    /// <summary>
    /// The decoder proper on the decoder input z = latents / scaling_factor + shift_factor (<c>[C,h,w]</c> F32;
    /// consumed: disposed once <c>conv_in</c> has read it): <c>post_quant_conv</c> when enabled, then the blocks.
    /// Returns <c>[out_channels, f·h, f·w]</c>.
    /// </summary>
    private Tensor DecodeDenormalized(Tensor z)
    {
        const string tag = AllocationTags.Vae;
        var ops = _context.Ops;
        Tensor x;
        using (z)
        {
            if (_postQuantConv is null)
            {
                x = _convIn.Apply(_context, z);
            }
            else
            {
                using var pq = _postQuantConv.Apply(_context, z);
                x = _convIn.Apply(_context, pq);
            }
        }

        x = _midResnet0.Apply(_context, x, Groups);
        if (_midAttention is not null) x = _midAttention.Apply(_context, x, Groups);
        x = _midResnet1.Apply(_context, x, Groups);

        foreach (var block in _upBlocks)
        {
            foreach (var resnet in block.Resnets) x = resnet.Apply(_context, x, Groups);
            if (block.Upsampler is { } conv)
            {
                Tensor upsampled;
                try
                {
                    upsampled = conv.Apply(_context, x, upsample: true);
                }
                finally
                {
                    x.Dispose();
                }
                x = upsampled;
            }
        }

        Tensor h;
        using (x)
        {
            h = _context.Empty(tag, x.Shape);
            ops.GroupNorm(x, Groups, _normOutGamma, _normOutBeta, GroupNormEps, silu: true, h);
        }
        using (h) return _convOut.Apply(_context, h);
    }

    /// <summary>Allocates z = latents / scaling_factor + shift_factor as <c>[C,hl,wl]</c> (tag Vae).</summary>
    private Tensor Denormalize(Tensor latents, int hl, int wl)
    {
        var z = _context.Empty(AllocationTags.Vae, Config.LatentChannels, hl, wl);
        try
        {
            _context.Ops.DenormalizeLatents(latents.Reshape(Config.LatentChannels, hl, wl), (float)Config.ScalingFactor, (float)Config.EffectiveShiftFactor, z);
        }
        catch
        {
            z.Dispose();
            throw;
        }
        return z;
    }

    private (int Hl, int Wl) LatentSize(Tensor latents)
    {
        int c = Config.LatentChannels;
        int[] s = latents.Shape;
        bool ok = latents.DType == TensorDType.F32 && (
            (s.Length == 3 && s[0] == c) ||
            (s.Length == 4 && ((s[0] == 1 && s[1] == c) || (s[0] == c && s[1] == 1))));
        if (!ok || s[^1] < 1 || s[^2] < 1)
            throw new TensorShapeException(
                $"latents must be F32 [{c},Hl,Wl] (or [1,{c},Hl,Wl] / [{c},1,Hl,Wl]) with Hl, Wl ≥ 1 but is [{string.Join(",", s)}] {latents.DType}.",
                nameof(latents));
        return (s[^2], s[^1]);
    }

    private static void Validate(VaeConfig c)
    {
        if (c.BlockOutChannels is null || c.BlockOutChannels.Count < 1)
            throw new ArgumentOutOfRangeException("block_out_channels", c.BlockOutChannels?.Count ?? 0, "block_out_channels must list at least one block.");
        if (c.NormNumGroups < 1)
            throw new ArgumentOutOfRangeException("norm_num_groups", c.NormNumGroups, "norm_num_groups must be ≥ 1.");
        foreach (int ch in c.BlockOutChannels)
        {
            if (ch < 1 || ch % c.NormNumGroups != 0)
                throw new ArgumentOutOfRangeException("block_out_channels", ch, $"Every block width must be a positive multiple of norm_num_groups ({c.NormNumGroups}).");
        }
        if (c.LayersPerBlock < 0)
            throw new ArgumentOutOfRangeException("layers_per_block", c.LayersPerBlock, "layers_per_block must be ≥ 0.");
        if (c.LatentChannels < 1)
            throw new ArgumentOutOfRangeException("latent_channels", c.LatentChannels, "latent_channels must be ≥ 1.");
        if (c.OutChannels < 1)
            throw new ArgumentOutOfRangeException("out_channels", c.OutChannels, "out_channels must be ≥ 1.");
        if (!(c.ScalingFactor != 0) || !double.IsFinite(c.ScalingFactor))
            throw new ArgumentOutOfRangeException("scaling_factor", c.ScalingFactor, "scaling_factor must be finite and non-zero.");
        if (!double.IsFinite(c.EffectiveShiftFactor))
            throw new ArgumentOutOfRangeException("shift_factor", c.ShiftFactor, "shift_factor must be finite.");
    }

    private sealed record UpBlock(Resnet[] Resnets, Conv? Upsampler);

    /// <summary>A conv with bias; <see cref="Apply"/> allocates the output.</summary>
    internal sealed record Conv(Tensor Weight, Tensor Bias)
    {
        public static Conv Load(IWeightProvider w, string name, int cout, int cin, int k) =>
            new(w.Matrix(name + ".weight", cout, cin, k, k), w.Vector(name + ".bias", cout));

        /// <summary>Allocates and returns conv(x), or conv(nearest2x(x)) with the upsample fused into the conv.</summary>
        public Tensor Apply(ComputeContext ctx, Tensor x, bool upsample = false)
        {
            int f = upsample ? 2 : 1;
            var y = ctx.Empty(AllocationTags.Vae, Weight.Shape[0], f * x.Shape[1], f * x.Shape[2]);
            try
            {
                if (upsample) ctx.Ops.Upsample2xConv2d(x, Weight, Bias, y);
                else ctx.Ops.Conv2d(x, Weight, Bias, y);
            }
            catch
            {
                y.Dispose();
                throw;
            }
            return y;
        }
    }

    /// <summary>
    /// diffusers <c>ResnetBlock2D</c> without time embedding: h = conv2(SiLU(GN2(conv1(SiLU(GN1(x)))))),
    /// out = shortcut(x) + h, shortcut a 1×1 conv when the width changes.
    /// </summary>
    internal sealed record Resnet(Tensor Norm1Gamma, Tensor Norm1Beta, Conv Conv1, Tensor Norm2Gamma, Tensor Norm2Beta, Conv Conv2, Conv? Shortcut)
    {
        public static Resnet Load(IWeightProvider w, string p, int cin, int cout) => new(
            w.Vector(p + ".norm1.weight", cin), w.Vector(p + ".norm1.bias", cin),
            Conv.Load(w, p + ".conv1", cout, cin, 3),
            w.Vector(p + ".norm2.weight", cout), w.Vector(p + ".norm2.bias", cout),
            Conv.Load(w, p + ".conv2", cout, cout, 3),
            cin == cout ? null : Conv.Load(w, p + ".conv_shortcut", cout, cin, 1));

        /// <summary>Consumes (disposes) <paramref name="x"/> and returns the block output.</summary>
        public Tensor Apply(ComputeContext ctx, Tensor x, int groups)
        {
            var ops = ctx.Ops;
            using (x)
            {
                Tensor h;
                using (var n1 = ctx.Empty(AllocationTags.Vae, x.Shape))
                {
                    ops.GroupNorm(x, groups, Norm1Gamma, Norm1Beta, GroupNormEps, silu: true, n1);
                    h = Conv1.Apply(ctx, n1);
                }

                Tensor n2;
                using (h)
                {
                    n2 = ctx.Empty(AllocationTags.Vae, h.Shape);
                    ops.GroupNorm(h, groups, Norm2Gamma, Norm2Beta, GroupNormEps, silu: true, n2);
                }

                // h is dead once normalised, so it is freed before conv2 allocates (one tensor lower peak).
                Tensor y;
                using (n2) y = Conv2.Apply(ctx, n2);

                try
                {
                    if (Shortcut is null)
                    {
                        ops.Add(x, y, y);
                    }
                    else
                    {
                        using var s = Shortcut.Apply(ctx, x);
                        ops.Add(s, y, y);
                    }
                }
                catch
                {
                    y.Dispose();
                    throw;
                }
                return y;
            }
        }
    }

    /// <summary>
    /// The mid-block self-attention (diffusers <c>Attention</c> with a GroupNorm, one head of width C, bias on all
    /// projections, residual connection): x + to_out(softmax(q·kᵀ/√C)·v) over the H·W tokens of GN(x).
    /// </summary>
    internal sealed record Attention(Tensor NormGamma, Tensor NormBeta, Tensor Q, Tensor QBias, Tensor K, Tensor KBias, Tensor V, Tensor VBias, Tensor Out, Tensor OutBias)
    {
        public static Attention Load(IWeightProvider w, string p, int c) => new(
            w.Vector(p + ".group_norm.weight", c), w.Vector(p + ".group_norm.bias", c),
            Projection(w, p + ".to_q.weight", c), w.Vector(p + ".to_q.bias", c),
            Projection(w, p + ".to_k.weight", c), w.Vector(p + ".to_k.bias", c),
            Projection(w, p + ".to_v.weight", c), w.Vector(p + ".to_v.bias", c),
            Projection(w, p + ".to_out.0.weight", c), w.Vector(p + ".to_out.0.bias", c));

        /// <summary>
        /// A projection stored as Linear <c>[C,C]</c> (diffusers) or conv-shaped <c>[C,C,1,1]</c> (legacy files):
        /// the same bytes, so the conv form is viewed as a matrix.
        /// </summary>
        private static Tensor Projection(IWeightProvider w, string name, int c)
        {
            try
            {
                return w.Matrix(name, c, c);
            }
            catch (WeightShapeException e) when (e.ActualShape is [_, _, 1, 1])
            {
                return w.Matrix(name, c, c, 1, 1).Reshape(c, c);
            }
        }

        /// <summary>Consumes (disposes) <paramref name="x"/> and returns x + attention(x).</summary>
        public Tensor Apply(ComputeContext ctx, Tensor x, int groups)
        {
            const string tag = AllocationTags.Vae;
            var ops = ctx.Ops;
            int c = x.Shape[0], n = x.Shape[1] * x.Shape[2];
            try
            {
                // Every intermediate is released on any failure, so a failed decode leaves nothing allocated.
                Tensor tokens;
                using (var g = ctx.Empty(tag, x.Shape))
                {
                    ops.GroupNorm(x, groups, NormGamma, NormBeta, GroupNormEps, silu: false, g);
                    tokens = ctx.Empty(tag, n, c);
                    try { ops.Transpose2d(g, tokens); }
                    catch { tokens.Dispose(); throw; }
                }

                Tensor? q = null, k = null, v = null;
                using (tokens)
                {
                    try
                    {
                        q = ctx.Empty(tag, n, 1, c);
                        k = ctx.Empty(tag, n, 1, c);
                        v = ctx.Empty(tag, n, 1, c);
                        ops.Linear(tokens, Q, QBias, q.Reshape(n, c));
                        ops.Linear(tokens, K, KBias, k.Reshape(n, c));
                        ops.Linear(tokens, V, VBias, v.Reshape(n, c));
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
                    a = ctx.Empty(tag, n, 1, c);
                    try { ops.Attention(q, k, v, (float)(1.0 / Math.Sqrt(c)), causal: false, a); }
                    catch { a.Dispose(); throw; }
                }

                Tensor o;
                using (a)
                {
                    o = ctx.Empty(tag, n, c);
                    try { ops.Linear(a.Reshape(n, c), Out, OutBias, o); }
                    catch { o.Dispose(); throw; }
                }

                using (o)
                {
                    var y = ctx.Empty(tag, x.Shape);
                    try
                    {
                        ops.Transpose2d(o, y);
                        ops.Add(x, y, y);
                    }
                    catch
                    {
                        y.Dispose();
                        throw;
                    }
                    return y;
                }
            }
            finally
            {
                x.Dispose();
            }
        }
    }
}
