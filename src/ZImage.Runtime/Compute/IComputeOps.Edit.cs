namespace ZImage.Runtime.Compute;

/// <summary>Ops of image editing: the VAE encoder's downsample conv, the posterior sample, noising and the inpaint blend (F32).</summary>
public partial interface IComputeOps
{
    /// <summary>
    /// diffusers <c>Downsample2D(use_conv=True, padding=0)</c>: 3×3 conv, stride 2, of x <c>[Cin,H,W]</c> zero-padded by
    /// one column on the right and one row at the bottom; y <c>[Cout,(H−2)/2+1,(W−2)/2+1]</c>, w <c>[Cout,Cin,3,3]</c>
    /// (F32, F16 or BF16), bias <c>[Cout]</c> F32 or null. x and y must not alias.
    /// </summary>
    void DownsampleConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y);

    /// <summary>
    /// The VAE posterior (diffusers <c>DiagonalGaussianDistribution</c>) on moments <c>[2C,H,W]</c>: std =
    /// exp(0.5·clamp(logvar, −30, 20)), y <c>[C,H,W]</c> = (mean + std·eps − <paramref name="shift"/>)·<paramref name="scale"/>
    /// (eps null: the mode, mean). When <paramref name="std"/> is given it receives the std.
    /// </summary>
    void PosteriorSample(Tensor moments, Tensor? eps, float scale, float shift, Tensor y, Tensor? std = null);

    /// <summary>Flow-matching <c>scale_noise</c>: y = σ·noise + (1 − σ)·x (same shapes; y may alias x or noise).</summary>
    void ScaleNoise(Tensor x, Tensor noise, float sigma, Tensor y);

    /// <summary>
    /// Inpaint blend in place: latents = (1 − m)·(σ·noise + (1 − σ)·image) + m·latents, mask m <c>[H,W]</c> (or
    /// <c>[1,H,W]</c>) broadcast over the channels of latents, image and noise <c>[C,H,W]</c>.
    /// </summary>
    void MaskBlend(Tensor latents, Tensor image, Tensor noise, Tensor mask, float sigma);
}

/// <summary>Shape and dtype checks of the edit ops, shared by the kernel and planning implementations.</summary>
internal static class EditOpValidation
{
    public static (int Cin, int H, int W, int Cout) DownsampleConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        VaeOpValidation.ConvOperands(x, w, y);
        int cin = x.Shape[0], h = x.Shape[1], wd = x.Shape[2], cout = w.Shape[0];
        if (w.Shape[2] != 3 || w.Shape[3] != 3 || w.Shape[1] != cin)
            OpValidation.Throw($"w {OpValidation.Fmt(w)} must be a 3×3 kernel [Cout,{cin},3,3] for x {OpValidation.Fmt(x)}.", nameof(w));
        if (h < 2 || wd < 2)
            OpValidation.Throw($"x {OpValidation.Fmt(x)} must be at least 2×2 for a stride-2 conv.", nameof(x));
        if (bias is not null)
        {
            OpValidation.F32(bias, nameof(bias));
            OpValidation.Count(bias, cout, nameof(bias));
        }
        int oh = (h - 2) / 2 + 1, ow = (wd - 2) / 2 + 1;
        if (y.Shape[0] != cout || y.Shape[1] != oh || y.Shape[2] != ow)
            OpValidation.Throw($"y must be [{cout},{oh},{ow}] for x {OpValidation.Fmt(x)} but is {OpValidation.Fmt(y)}.", nameof(y));
        if (ReferenceEquals(x.Allocation, y.Allocation))
            OpValidation.Throw("y must not share its device block with x.", nameof(y));
        return (cin, h, wd, cout);
    }

    public static (int C, int Plane) PosteriorSample(Tensor moments, Tensor? eps, Tensor y, Tensor? std)
    {
        OpValidation.F32(moments, nameof(moments));
        OpValidation.MinRank(moments, 2, nameof(moments));
        OpValidation.F32(y, nameof(y));
        int c2 = moments.Shape[0];
        long plane = moments.ElementCount / Math.Max(1, c2);
        if (c2 < 2 || c2 % 2 != 0 || plane < 1 || plane > int.MaxValue)
            OpValidation.Throw($"moments {OpValidation.Fmt(moments)} must be [2C,H,W] with an even, positive channel count.", nameof(moments));
        int c = c2 / 2;
        OpValidation.Count(y, c * plane, nameof(y));
        if (eps is not null)
        {
            OpValidation.F32(eps, nameof(eps));
            OpValidation.Count(eps, c * plane, nameof(eps));
        }
        if (std is not null)
        {
            OpValidation.F32(std, nameof(std));
            OpValidation.Count(std, c * plane, nameof(std));
        }
        return (c, (int)plane);
    }

    public static void ScaleNoise(Tensor x, Tensor noise, float sigma, Tensor y)
    {
        OpValidation.BinaryF32(x, nameof(x), noise, nameof(noise), y, nameof(y));
        SigmaInRange(sigma);
    }

    public static void MaskBlend(Tensor latents, Tensor image, Tensor noise, Tensor mask, float sigma)
    {
        OpValidation.BinaryF32(latents, nameof(latents), image, nameof(image), latents, nameof(latents));
        OpValidation.BinaryF32(latents, nameof(latents), noise, nameof(noise), latents, nameof(latents));
        OpValidation.F32(mask, nameof(mask));
        OpValidation.MinRank(latents, 2, nameof(latents));
        long plane = latents.ElementCount / latents.Shape[0];
        if (mask.ElementCount != plane)
            OpValidation.Throw($"mask {OpValidation.Fmt(mask)} must have one value per position of latents {OpValidation.Fmt(latents)} ({plane}).", nameof(mask));
        SigmaInRange(sigma);
    }

    private static void SigmaInRange(float sigma)
    {
        if (!(sigma >= 0f && sigma <= 1f))
            OpValidation.Throw($"sigma {sigma} must be in [0, 1].", nameof(sigma));
    }
}
