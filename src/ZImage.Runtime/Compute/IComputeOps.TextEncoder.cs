namespace ZImage.Runtime.Compute;

/// <summary>Ops the Qwen3 text encoder needs beyond the common set.</summary>
public partial interface IComputeOps
{
    /// <summary>
    /// Qwen3 rotary embedding, rotate-half (NeoX) convention, in place on <paramref name="x"/> <c>[S,H,Dh]</c>:
    /// x ← x·cos + rotate_half(x)·sin with rotate_half(x) = concat(−x[Dh/2:], x[:Dh/2]) and
    /// <paramref name="cos"/>/<paramref name="sin"/> <c>[S,Dh]</c> the row of each token (shared by all heads).
    /// </summary>
    void RopeRotateHalf(Tensor x, Tensor cos, Tensor sin);
}
