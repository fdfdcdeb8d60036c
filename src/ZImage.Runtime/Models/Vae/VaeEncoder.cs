using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;

namespace ZImage.Runtime.Models.Vae;

/// <summary>
/// The encoder half of diffusers' <c>AutoencoderKL</c> and its <c>DiagonalGaussianDistribution</c>: image
/// <c>[3,H,W]</c> in −1..1 → moments <c>[2·latent_channels, H/f, W/f]</c> → posterior sample → normalised latents
/// <c>(z − shift_factor)·scaling_factor</c> (what img2img and inpaint feed the denoiser). Block order is diffusers':
/// <c>conv_in</c>; down blocks over <c>block_out_channels</c>, each <c>layers_per_block</c> resnets and, except the
/// last, a <c>Downsample2D</c> (zero-pad right/bottom by one, 3×3 conv stride 2); mid block (resnet, single-head
/// attention, resnet); <c>conv_norm_out</c> + SiLU; <c>conv_out</c> to 2·latent channels; <c>quant_conv</c> when the
/// config enables it (not in Z-Image's VAE). The resnet and attention blocks are the decoder's
/// (<see cref="VaeDecoder.Resnet"/>, <see cref="VaeDecoder.Attention"/>). All weights are fetched at construction;
/// <see cref="Encode"/> allocates only activations (tag <see cref="AllocationTags.Vae"/>), all through
/// <see cref="IComputeOps"/>, so its planning twin makes the same allocations.
/// </summary>
public sealed class VaeEncoder
{
    /// <summary>The key prefix of the encoder in a diffusers <c>AutoencoderKL</c> checkpoint.</summary>
    public const string DefaultKeyPrefix = "encoder.";

    private readonly ComputeContext _context;
    private readonly VaeDecoder.Conv _convIn;
    private readonly DownBlock[] _downBlocks;
    private readonly VaeDecoder.Resnet _midResnet0;
    private readonly VaeDecoder.Attention? _midAttention;
    private readonly VaeDecoder.Resnet _midResnet1;
    private readonly Tensor _normOutGamma;
    private readonly Tensor _normOutBeta;
    private readonly VaeDecoder.Conv _convOut;
    private readonly VaeDecoder.Conv? _quantConv;

    /// <summary>Fetches the encoder weights.</summary>
    /// <param name="config">The VAE's <c>config.json</c>.</param>
    /// <param name="weights">Weight source (checkpoint or planning); owns the weight tensors.</param>
    /// <param name="context">Allocator and ops for activations.</param>
    /// <param name="keyPrefix">Prefix of every encoder key (default <see cref="DefaultKeyPrefix"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException">A config value is outside what the architecture allows.</exception>
    public VaeEncoder(VaeConfig config, IWeightProvider weights, ComputeContext context, string keyPrefix = DefaultKeyPrefix)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(keyPrefix);
        if (config.BlockOutChannels is not { Count: >= 1 })
            throw new ArgumentOutOfRangeException("block_out_channels", config.BlockOutChannels?.Count ?? 0, "block_out_channels must list at least one block.");
        if (config.InChannels < 1)
            throw new ArgumentOutOfRangeException("in_channels", config.InChannels, "in_channels must be ≥ 1.");
        if (config.LayersPerBlock < 1)
            throw new ArgumentOutOfRangeException("layers_per_block", config.LayersPerBlock, "layers_per_block must be ≥ 1.");
        Config = config;
        _context = context;
        Groups = config.NormNumGroups;
        var channels = config.BlockOutChannels;
        _convIn = VaeDecoder.Conv.Load(weights, keyPrefix + "conv_in", channels[0], config.InChannels, 3);
        _downBlocks = new DownBlock[channels.Count];
        int prev = channels[0];
        for (int b = 0; b < channels.Count; b++)
        {
            string p = $"{keyPrefix}down_blocks.{b}.";
            int cout = channels[b];
            var resnets = new VaeDecoder.Resnet[config.LayersPerBlock];
            for (int r = 0; r < resnets.Length; r++)
                resnets[r] = VaeDecoder.Resnet.Load(weights, $"{p}resnets.{r}", r == 0 ? prev : cout, cout);
            bool last = b == channels.Count - 1;
            _downBlocks[b] = new DownBlock(resnets, last ? null : VaeDecoder.Conv.Load(weights, p + "downsamplers.0.conv", cout, cout, 3));
            prev = cout;
        }
        int top = channels[^1];
        _midResnet0 = VaeDecoder.Resnet.Load(weights, keyPrefix + "mid_block.resnets.0", top, top);
        _midAttention = config.MidBlockAddAttention ? VaeDecoder.Attention.Load(weights, keyPrefix + "mid_block.attentions.0", top) : null;
        _midResnet1 = VaeDecoder.Resnet.Load(weights, keyPrefix + "mid_block.resnets.1", top, top);
        _normOutGamma = weights.Vector(keyPrefix + "conv_norm_out.weight", top);
        _normOutBeta = weights.Vector(keyPrefix + "conv_norm_out.bias", top);
        _convOut = VaeDecoder.Conv.Load(weights, keyPrefix + "conv_out", 2 * config.LatentChannels, top, 3);
        if (config.UseQuantConv)
        {
            // quant_conv sits beside the encoder in AutoencoderKL (key "quant_conv", not "encoder.…").
            string root = keyPrefix.EndsWith(DefaultKeyPrefix, StringComparison.Ordinal) ? keyPrefix[..^DefaultKeyPrefix.Length] : "";
            _quantConv = VaeDecoder.Conv.Load(weights, root + "quant_conv", 2 * config.LatentChannels, 2 * config.LatentChannels, 1);
        }
        DownscaleFactor = 1 << (channels.Count - 1);
    }

    /// <summary>The configuration the encoder was built from.</summary>
    public VaeConfig Config { get; }

    /// <summary>GroupNorm group count (<c>norm_num_groups</c>).</summary>
    public int Groups { get; }

    /// <summary>Input pixels per latent pixel along each axis (8 for four blocks).</summary>
    public int DownscaleFactor { get; }

    /// <summary>Runs the encoder: the posterior's moments (mean = channels 0..C−1, logvar = C..2C−1, before clamping).</summary>
    /// <param name="image">F32 <c>[in_channels,H,W]</c> (or <c>[1,in_channels,H,W]</c>) in −1..1, H and W multiples of <see cref="DownscaleFactor"/>. Not modified or disposed.</param>
    /// <returns>Moments <c>[2·latent_channels, H/f, W/f]</c>, tag <see cref="AllocationTags.Vae"/>; the caller disposes them.</returns>
    /// <exception cref="TensorShapeException">image is not F32, has another channel count, or a size that is not a multiple of the downscale factor.</exception>
    public Tensor EncodeMoments(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int[] s = image.Shape;
        bool ok = image.DType == TensorDType.F32 && ((s.Length == 3 && s[0] == Config.InChannels) || (s.Length == 4 && s[0] == 1 && s[1] == Config.InChannels));
        int hh = s[^2], ww = s[^1];
        if (!ok || hh < DownscaleFactor || ww < DownscaleFactor || hh % DownscaleFactor != 0 || ww % DownscaleFactor != 0)
            throw new TensorShapeException(
                $"image must be F32 [{Config.InChannels},H,W] with H, W positive multiples of {DownscaleFactor} but is [{string.Join(",", s)}] {image.DType}.", nameof(image));
        var ctx = _context;
        var ops = ctx.Ops;
        Tensor x = _convIn.Apply(ctx, image.Reshape(Config.InChannels, hh, ww));
        foreach (var block in _downBlocks)
        {
            foreach (var resnet in block.Resnets) x = resnet.Apply(ctx, x, Groups);
            if (block.Downsampler is { } conv)
            {
                Tensor y;
                try
                {
                    y = ctx.Empty(AllocationTags.Vae, conv.Weight.Shape[0], (x.Shape[1] - 2) / 2 + 1, (x.Shape[2] - 2) / 2 + 1);
                    try { ops.DownsampleConv2d(x, conv.Weight, conv.Bias, y); }
                    catch { y.Dispose(); throw; }
                }
                finally
                {
                    x.Dispose();
                }
                x = y;
            }
        }
        x = _midResnet0.Apply(ctx, x, Groups);
        if (_midAttention is not null) x = _midAttention.Apply(ctx, x, Groups);
        x = _midResnet1.Apply(ctx, x, Groups);

        Tensor h;
        using (x)
        {
            h = ctx.Empty(AllocationTags.Vae, x.Shape);
            ops.GroupNorm(x, Groups, _normOutGamma, _normOutBeta, VaeDecoder.GroupNormEps, silu: true, h);
        }
        Tensor moments;
        using (h) moments = _convOut.Apply(ctx, h);
        if (_quantConv is null) return moments;
        using (moments) return _quantConv.Apply(ctx, moments);
    }

    /// <summary>
    /// Encodes an image and samples its posterior: <c>((mean + std·eps) − shift_factor)·scaling_factor</c>, the
    /// <c>image_latents</c> of diffusers' img2img and inpaint pipelines (eps null: the posterior mode).
    /// </summary>
    /// <param name="image">As for <see cref="EncodeMoments"/>.</param>
    /// <param name="eps">Standard-normal draws <c>[latent_channels, H/f, W/f]</c> (F32, any shape with that many values), or null for the mode.</param>
    /// <returns>Latents <c>[latent_channels, H/f, W/f]</c>, tag <paramref name="tag"/>; the caller disposes them.</returns>
    /// <param name="tag">Allocation tag of the result (default <see cref="AllocationTags.Latents"/>).</param>
    public Tensor Encode(Tensor image, Tensor? eps, string tag = AllocationTags.Latents)
    {
        using var moments = EncodeMoments(image);
        var y = _context.Empty(tag, Config.LatentChannels, moments.Shape[1], moments.Shape[2]);
        try
        {
            _context.Ops.PosteriorSample(moments, eps, (float)Config.ScalingFactor, (float)Config.EffectiveShiftFactor, y);
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    private sealed record DownBlock(VaeDecoder.Resnet[] Resnets, VaeDecoder.Conv? Downsampler);
}
