namespace ZImage.Runtime.Compute;

public sealed partial class PlanningComputeOps
{
    /// <inheritdoc />
    public void Conv2d(Tensor x, Tensor w, Tensor? bias, Tensor y) => VaeOpValidation.Conv2d(x, w, bias, y);

    /// <inheritdoc />
    public void Upsample2xConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y) => VaeOpValidation.Conv2d(x, w, bias, y, upsample: true);

    /// <inheritdoc />
    public void Transpose2d(Tensor x, Tensor y) => VaeOpValidation.Transpose2d(x, y);
}
