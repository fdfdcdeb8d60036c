namespace ZImage.Runtime.Compute;

/// <summary>Ops the VAE decoder needs beyond the common set (activations F32, channel-major <c>[C,H,W]</c>).</summary>
public partial interface IComputeOps
{
    /// <summary>
    /// 2-D convolution, stride 1, zero padding k/2 ("same" size): y[co,h,w] = bias[co] + Σ w[co,ci,dy,dx]·x[ci,h+dy−k/2,w+dx−k/2]
    /// with x <c>[Cin,H,W]</c>, w <c>[Cout,Cin,k,k]</c> (k ∈ {1, 3}; F32, F16 or BF16), bias <c>[Cout]</c> F32 or null,
    /// y <c>[Cout,H,W]</c>; fp32 accumulation. x and y must not alias.
    /// </summary>
    void Conv2d(Tensor x, Tensor w, Tensor? bias, Tensor y);

    /// <summary>Nearest-neighbour 2× upsampling: y[c,2h+i,2w+j] = x[c,h,w] for x <c>[C,H,W]</c>, y <c>[C,2H,2W]</c>.</summary>
    void Upsample2xNearest(Tensor x, Tensor y);

    /// <summary>
    /// Transpose of a matrix: y <c>[C,R]</c> = xᵀ for x <c>[R,C]</c> (any tensor whose first dimension is R and
    /// whose remaining dimensions multiply to C, e.g. <c>[C,H,W]</c> → <c>[H·W,C]</c>). x and y must not alias.
    /// </summary>
    void Transpose2d(Tensor x, Tensor y);

    /// <summary>
    /// Latent de-normalisation y = x / <paramref name="scale"/> + <paramref name="shift"/> (float32 division, as the
    /// reference's <c>latents / scaling_factor + shift_factor</c>). x and y may alias.
    /// </summary>
    void ScaleShift(Tensor x, float scale, float shift, Tensor y);
}
