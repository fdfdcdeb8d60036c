namespace ZImage.Runtime.Compute;

public sealed partial class PlanningComputeOps
{
    /// <inheritdoc />
    public void DownsampleConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y) => EditOpValidation.DownsampleConv2d(x, w, bias, y);

    /// <inheritdoc />
    public void PosteriorSample(Tensor moments, Tensor? eps, float scale, float shift, Tensor y, Tensor? std = null) =>
        EditOpValidation.PosteriorSample(moments, eps, y, std);

    /// <inheritdoc />
    public void ScaleNoise(Tensor x, Tensor noise, float sigma, Tensor y) => EditOpValidation.ScaleNoise(x, noise, sigma, y);

    /// <inheritdoc />
    public void MaskBlend(Tensor latents, Tensor image, Tensor noise, Tensor mask, float sigma) => EditOpValidation.MaskBlend(latents, image, noise, mask, sigma);
}
