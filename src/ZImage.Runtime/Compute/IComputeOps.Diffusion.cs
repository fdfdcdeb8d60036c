namespace ZImage.Runtime.Compute;

/// <summary>Denoising-loop and image-output ops used by the pipeline (all F32 unless stated).</summary>
public partial interface IComputeOps
{
    /// <summary>
    /// Flow-matching Euler step in the Z-Image convention, where the velocity is the NEGATED model output:
    /// latents += dt · (−modelOutput), with dt = σ[i+1] − σ[i] (negative while denoising).
    /// </summary>
    void EulerStep(Tensor latents, Tensor modelOutput, float dt);

    /// <summary>
    /// Classifier-free guidance on raw model outputs: pred = pos + guidance·(pos − neg). When
    /// <paramref name="normalization"/> &gt; 0 and ‖pred‖₂ &gt; ‖pos‖₂·normalization (norms over the whole tensor),
    /// pred is rescaled to ‖pos‖₂·normalization. The caller handles cfg truncation (skip this op when guidance is
    /// off for the step). prediction must not alias the inputs.
    /// </summary>
    void CfgCombine(Tensor positive, Tensor negative, float guidance, float normalization, Tensor prediction);

    /// <summary>
    /// Decoded image <c>[3,H,W]</c> (roughly −1..1) → interleaved RGB8 <c>[H,W,3]</c> U8:
    /// round(clamp(x·0.5 + 0.5, 0, 1)·255).
    /// </summary>
    void ToRgb8(Tensor image, Tensor rgb);

    /// <summary>
    /// A cheap preview of latents <c>[C,Hl,Wl]</c> as RGB8 <c>[Hl,Wl,3]</c> U8 (one pixel per latent position):
    /// rgb = latents·<paramref name="projection"/> (+ <paramref name="bias"/>), mapped from −1..1 to bytes like
    /// <see cref="ToRgb8"/>. projection is <c>[C,3]</c> F32 (e.g. the FLUX-VAE latent→RGB factors), bias <c>[3]</c> or null.
    /// </summary>
    void LatentPreview(Tensor latents, Tensor projection, Tensor? bias, Tensor rgb);

    /// <summary>VAE input from final latents: y = latents / <paramref name="scalingFactor"/> + <paramref name="shiftFactor"/> (y may alias latents).</summary>
    void DenormalizeLatents(Tensor latents, float scalingFactor, float shiftFactor, Tensor y);

    /// <summary>Downloads a U8 tensor to host (waits for queued work).</summary>
    byte[] DownloadBytes(Tensor src);
}
