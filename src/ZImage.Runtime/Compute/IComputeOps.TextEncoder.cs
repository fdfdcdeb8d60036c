namespace ZImage.Runtime.Compute;

/// <summary>Ops the Qwen3 text encoder needs beyond the common set.</summary>
public partial interface IComputeOps
{
    /// <summary>
    /// Qwen3 rotary embedding, rotate-half (NeoX) convention, in place on queries <paramref name="q"/> <c>[S,Hq,Dh]</c>
    /// and keys <paramref name="k"/> <c>[S,Hk,Dh]</c> in one launch: x ← x·cos + rotate_half(x)·sin with
    /// rotate_half(x) = concat(−x[Dh/2:], x[:Dh/2]) and <paramref name="cos"/>/<paramref name="sin"/> <c>[S,Dh]</c> the
    /// row of each token (shared by all heads).
    /// </summary>
    void RopeRotateHalf(Tensor q, Tensor k, Tensor cos, Tensor sin);
}

/// <summary>Shape and dtype checks of the text-encoder ops, shared by the kernel and planning implementations.</summary>
internal static class TextEncoderOpValidation
{
    public static (int S, int Hq, int Hk, int Dh) RopeRotateHalf(Tensor q, Tensor k, Tensor cos, Tensor sin)
    {
        var (s, hq, dh) = Table(q, cos, sin, nameof(q));
        OpValidation.SameActivation(q, nameof(q), k, nameof(k));
        OpValidation.Rank(k, 3, nameof(k));
        if (k.Shape[0] != s || k.Shape[2] != dh)
            OpValidation.Throw($"k {OpValidation.Fmt(k)} must have the tokens and head dim of q {OpValidation.Fmt(q)}.", nameof(k));
        int hk = k.Shape[1];
        if (ReferenceEquals(q.Allocation, k.Allocation) && q.ElementOffset == k.ElementOffset)
            OpValidation.Throw("q and k must be different tensors (both are rotated in place).", nameof(k));
        return (s, hq, hk, dh);
    }

    private static (int S, int H, int Dh) Table(Tensor x, Tensor cos, Tensor sin, string name)
    {
        OpValidation.Activation(x, name);
        OpValidation.F32(cos, nameof(cos));
        OpValidation.F32(sin, nameof(sin));
        OpValidation.Rank(x, 3, name);
        int s = x.Shape[0], h = x.Shape[1], dh = x.Shape[2];
        if (dh < 2 || dh % 2 != 0) OpValidation.Throw($"{name} {OpValidation.Fmt(x)} must have an even head dim ≥ 2.", name);
        if (cos.ElementCount != (long)s * dh || cos.Dim(-1) != dh)
            OpValidation.Throw($"cos must be [{s},{dh}] for {name} {OpValidation.Fmt(x)} but is {OpValidation.Fmt(cos)}.", nameof(cos));
        if (sin.ElementCount != (long)s * dh || sin.Dim(-1) != dh)
            OpValidation.Throw($"sin must be [{s},{dh}] for {name} {OpValidation.Fmt(x)} but is {OpValidation.Fmt(sin)}.", nameof(sin));
        return (s, h, dh);
    }
}
