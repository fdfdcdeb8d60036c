namespace ZImage.Runtime.Compute;

public sealed partial class PlanningComputeOps
{
    /// <inheritdoc />
    public void RopeRotateHalf(Tensor q, Tensor k, Tensor cos, Tensor sin) => TextEncoderOpValidation.RopeRotateHalf(q, k, cos, sin);
}
