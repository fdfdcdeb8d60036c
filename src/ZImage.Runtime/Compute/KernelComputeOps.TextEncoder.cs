namespace ZImage.Runtime.Compute;

public sealed partial class KernelComputeOps
{
    /// <inheritdoc />
    public void RopeRotateHalf(Tensor q, Tensor k, Tensor cos, Tensor sin)
    {
        var (s, hq, hk, dh) = TextEncoderOpValidation.RopeRotateHalf(q, k, cos, sin);
        Rope.ApplyRotateHalf(q.F32, k.F32, cos.F32, sin.F32, s, hq, hk, dh);
    }
}
