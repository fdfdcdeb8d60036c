namespace ZImage.Runtime.Compute;

/// <summary>
/// The planning (no-op) implementation of <see cref="IComputeOps"/>: every op validates shapes and dtypes exactly
/// like <see cref="KernelComputeOps"/> and then does nothing, so a model forward over a simulated device makes the
/// same allocations as a real one without running or touching data. Downloads return zeros.
/// Model-specific ops live in further partial files (e.g. <c>PlanningComputeOps.Vae.cs</c>).
/// </summary>
public sealed partial class PlanningComputeOps : IComputeOps
{
    /// <inheritdoc />
    public bool IsPlanning => true;

    /// <inheritdoc />
    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y) => OpValidation.Linear(x, w, bias, y);

    /// <inheritdoc />
    public void RmsNorm(Tensor x, Tensor? weight, float eps, Tensor y) => OpValidation.RowNorm(x, weight, eps, y);

    /// <inheritdoc />
    public void LayerNorm(Tensor x, float eps, Tensor y) => OpValidation.RowNorm(x, null, eps, y);

    /// <inheritdoc />
    public void GroupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, bool silu, Tensor y) =>
        OpValidation.GroupNorm(x, groups, gamma, beta, eps, y);

    /// <inheritdoc />
    public void Silu(Tensor x, Tensor y) => OpValidation.Unary(x, y);

    /// <inheritdoc />
    public void SwiGlu(Tensor gate, Tensor up, Tensor y) => OpValidation.Binary(gate, nameof(gate), up, nameof(up), y, nameof(y));

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y) => OpValidation.Binary(a, nameof(a), b, nameof(b), y, nameof(y));

    /// <inheritdoc />
    public void Attention(Tensor q, Tensor k, Tensor v, float scale, bool causal, Tensor o) => OpValidation.Attention(q, k, v, scale, o);

    /// <inheritdoc />
    public void Copy(Tensor src, Tensor dst) => OpValidation.Copy(src, dst);

    /// <inheritdoc />
    public void Convert(Tensor src, Tensor dst) => OpValidation.Convert(src, dst);

    /// <inheritdoc />
    public void Upload(ReadOnlySpan<float> host, Tensor dst) => OpValidation.Upload(host.Length, dst);

    /// <inheritdoc />
    public float[] Download(Tensor src)
    {
        OpValidation.F32(src, nameof(src));
        return new float[src.ElementCount];
    }

    /// <inheritdoc />
    public void Synchronize()
    {
    }

    /// <inheritdoc />
    public void RopeInterleaved(Tensor x, Tensor cos, Tensor sin) => OpValidation.Rope(x, cos, sin);

    /// <inheritdoc />
    public void RopeInterleaved(Tensor q, Tensor k, Tensor cos, Tensor sin) => OpValidation.RopePair(q, k, cos, sin);

    /// <inheritdoc />
    public void Modulate(Tensor x, Tensor scale, Tensor y) => OpValidation.Modulate(x, scale, y);

    /// <inheritdoc />
    public void GatedResidual(Tensor residual, Tensor branch, Tensor? gate) => OpValidation.GatedResidual(residual, branch, gate);

    /// <inheritdoc />
    public void RmsNormModulate(Tensor x, Tensor? weight, Tensor scale, float eps, Tensor y) => OpValidation.RmsNormModulate(x, weight, scale, eps, y);

    /// <inheritdoc />
    public void RmsNormGatedResidual(Tensor branch, Tensor? weight, Tensor? gate, float eps, Tensor residual) =>
        OpValidation.RmsNormGatedResidual(branch, weight, gate, eps, residual);

    /// <inheritdoc />
    public void LayerNormModulate(Tensor x, Tensor? scale, float eps, Tensor y) => OpValidation.LayerNormModulate(x, scale, eps, y);

    /// <inheritdoc />
    public void Tanh(Tensor x, Tensor y) => OpValidation.Unary(x, y);

    /// <inheritdoc />
    public void CopyRows(Tensor src, int srcRow, Tensor dst, int dstRow, int rowCount) => OpValidation.CopyRows(src, srcRow, dst, dstRow, rowCount);

    /// <inheritdoc />
    public void FillRows(Tensor row, Tensor dst, int startRow, int rowCount) => OpValidation.FillRows(row, dst, startRow, rowCount);

    /// <inheritdoc />
    public void Patchify(Tensor latents, int patchSize, Tensor patches) => OpValidation.Patchify(latents, patchSize, patches);

    /// <inheritdoc />
    public void Unpatchify(Tensor patches, int patchSize, Tensor latents) => OpValidation.Patchify(latents, patchSize, patches);

    /// <inheritdoc />
    public void EulerStep(Tensor latents, Tensor modelOutput, float dt)
    {
        OpValidation.Finite(dt, nameof(dt));
        OpValidation.BinaryF32(latents, nameof(latents), modelOutput, nameof(modelOutput), latents, nameof(latents));
    }

    /// <inheritdoc />
    public void CfgCombine(Tensor positive, Tensor negative, float guidance, float normalization, Tensor prediction)
    {
        OpValidation.Finite(guidance, nameof(guidance));
        OpValidation.Finite(normalization, nameof(normalization));
        OpValidation.BinaryF32(positive, nameof(positive), negative, nameof(negative), prediction, nameof(prediction));
    }

    /// <inheritdoc />
    public void ToRgb8(Tensor image, Tensor rgb) => OpValidation.Rgb8(image, 3, rgb, nameof(image));

    /// <inheritdoc />
    public void LatentPreview(Tensor latents, Tensor projection, Tensor? bias, Tensor rgb) => OpValidation.Preview(latents, projection, bias, rgb);

    /// <inheritdoc />
    public void DenormalizeLatents(Tensor latents, float scalingFactor, float shiftFactor, Tensor y) =>
        OpValidation.Denormalize(latents, scalingFactor, shiftFactor, y);

    /// <inheritdoc />
    public byte[] DownloadBytes(Tensor src)
    {
        OpValidation.DType(src, TensorDType.U8, nameof(src));
        return new byte[src.ElementCount];
    }
}
