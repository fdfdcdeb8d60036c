namespace ZImage.Runtime.Compute;

/// <summary>Ops the Z-Image DiT needs beyond the common set (all activations F32, row-major).</summary>
public partial interface IComputeOps
{
    /// <summary>
    /// DiT rotary embedding, interleaved-pair ("complex") convention, in place on <paramref name="x"/><c>[S,H,Dh]</c>:
    /// for pair j of every head, (x[2j], x[2j+1]) ← (x0·c − x1·s, x0·s + x1·c) with c/s = <paramref name="cos"/>/<paramref name="sin"/><c>[S,Dh/2]</c> row of the token.
    /// </summary>
    void RopeInterleaved(Tensor x, Tensor cos, Tensor sin);

    /// <summary><see cref="RopeInterleaved(Tensor, Tensor, Tensor)"/> on q<c>[S,Hq,Dh]</c> and k<c>[S,Hk,Dh]</c> in one launch.</summary>
    void RopeInterleaved(Tensor q, Tensor k, Tensor cos, Tensor sin);

    /// <summary>adaLN scale: y[r,:] = x[r,:] ⊙ (1 + <paramref name="scale"/>) with scale <c>[D]</c> broadcast over rows; x and y may alias.</summary>
    void Modulate(Tensor x, Tensor scale, Tensor y);

    /// <summary>
    /// Gated residual: residual += tanh(<paramref name="gate"/>) ⊙ branch (gate <c>[D]</c> broadcast over rows), or
    /// residual += branch when <paramref name="gate"/> is null (unmodulated blocks).
    /// </summary>
    void GatedResidual(Tensor residual, Tensor branch, Tensor? gate);

    /// <summary>
    /// Fused RMSNorm + adaLN scale: y = RMSNorm(x; weight, eps) ⊙ (1 + <paramref name="scale"/>) row-wise, scale <c>[D]</c>
    /// the raw modulation chunk; weight may be null. x and y may alias.
    /// </summary>
    void RmsNormModulate(Tensor x, Tensor? weight, Tensor scale, float eps, Tensor y);

    /// <summary>
    /// Fused sandwich-norm residual: residual += tanh(<paramref name="gate"/>) ⊙ RMSNorm(branch; weight, eps), or
    /// residual += RMSNorm(branch) when <paramref name="gate"/> is null (unmodulated blocks). branch must not alias residual.
    /// </summary>
    void RmsNormGatedResidual(Tensor branch, Tensor? weight, Tensor? gate, float eps, Tensor residual);

    /// <summary>
    /// Fused LayerNorm without affine (biased variance) and adaLN scale: y = LN(x) ⊙ (1 + <paramref name="scale"/>),
    /// or plain LN when scale is null (the DiT final layer). x and y may alias.
    /// </summary>
    void LayerNormModulate(Tensor x, Tensor? scale, float eps, Tensor y);

    /// <summary>y = tanh(x); x and y may alias.</summary>
    void Tanh(Tensor x, Tensor y);

    /// <summary>Copies <paramref name="rowCount"/> rows of width D from src (starting at <paramref name="srcRow"/>) into dst (starting at <paramref name="dstRow"/>).</summary>
    void CopyRows(Tensor src, int srcRow, Tensor dst, int dstRow, int rowCount);

    /// <summary>Writes the vector <paramref name="row"/> (<c>[D]</c> or <c>[1,D]</c>) into rows <paramref name="startRow"/> .. +<paramref name="rowCount"/>-1 of dst <c>[R,D]</c>.</summary>
    void FillRows(Tensor row, Tensor dst, int startRow, int rowCount);

    /// <summary>
    /// Patchify (patch size 2, the only one Z-Image uses) latents <c>[C,H,W]</c> into token rows: patches[h·Wt + w][(ph·p + pw)·C + c] = latents[c, p·h+ph, p·w+pw]
    /// for the first Ht·Wt rows of <paramref name="patches"/> <c>[N ≥ Ht·Wt, p·p·C]</c>; further rows are left untouched.
    /// </summary>
    void Patchify(Tensor latents, int patchSize, Tensor patches);

    /// <summary>The inverse of <see cref="Patchify"/>: reads the first Ht·Wt rows of <paramref name="patches"/> into latents <c>[C,H,W]</c>.</summary>
    void Unpatchify(Tensor patches, int patchSize, Tensor latents);
}
