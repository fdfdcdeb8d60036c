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

    /// <summary>
    /// The VAE's <c>Upsample2D</c>: nearest-neighbour 2× upsampling fused into the input read of a 3×3 (or 1×1) conv,
    /// y = Conv2d(up(x)) with up(x)[c,2h+i,2w+j] = x[c,h,w]; x <c>[Cin,H,W]</c>, y <c>[Cout,2H,2W]</c>. The upsampled
    /// tensor (4× the input) is never materialised.
    /// </summary>
    void Upsample2xConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y);

    /// <summary>
    /// Transpose of a matrix: y <c>[C,R]</c> = xᵀ for x <c>[R,C]</c> (any tensor whose first dimension is R and
    /// whose remaining dimensions multiply to C, e.g. <c>[C,H,W]</c> → <c>[H·W,C]</c>). x and y must not alias.
    /// </summary>
    void Transpose2d(Tensor x, Tensor y);
}

/// <summary>Shape and dtype checks of the VAE ops, shared by the kernel and planning implementations.</summary>
internal static class VaeOpValidation
{
    /// <summary>The operand checks every convolution shares: x [C,H,W] F32 or BF16, w [Cout,Cin,K,K] in a matrix dtype, y [C,H,W] of the dtype of x.</summary>
    /// <param name="x">The input.</param>
    /// <param name="w">The weight.</param>
    /// <param name="y">The output.</param>
    /// <param name="op">The op named by a typed 8-bit-weight error (the calling op, not this helper).</param>
    public static void ConvOperands(Tensor x, Tensor w, Tensor y, [System.Runtime.CompilerServices.CallerMemberName] string op = "")
    {
        OpValidation.Activation(x, nameof(x));
        OpValidation.Rank(x, 3, nameof(x));
        OpValidation.MatrixDType(w, nameof(w), op);
        OpValidation.Rank(w, 4, nameof(w));
        OpValidation.SameActivation(x, nameof(x), y, nameof(y));
        OpValidation.Rank(y, 3, nameof(y));
    }

    public static (int Cin, int H, int W, int Cout, int K) Conv2d(Tensor x, Tensor w, Tensor? bias, Tensor y, bool upsample = false)
    {
        ConvOperands(x, w, y);
        int cin = x.Shape[0], h = x.Shape[1], wd = x.Shape[2], cout = w.Shape[0], k = w.Shape[2];
        int f = upsample ? 2 : 1;
        if (k is not (1 or 3) || w.Shape[3] != k)
            OpValidation.Throw($"w {OpValidation.Fmt(w)} must be a 1×1 or 3×3 kernel [Cout,Cin,k,k].", nameof(w));
        if (w.Shape[1] != cin)
            OpValidation.Throw($"w {OpValidation.Fmt(w)} must have {cin} input channels to match x {OpValidation.Fmt(x)}.", nameof(w));
        if (bias is not null)
        {
            OpValidation.F32(bias, nameof(bias));
            OpValidation.Count(bias, cout, nameof(bias));
        }
        if (y.Shape[0] != cout || y.Shape[1] != f * h || y.Shape[2] != f * wd)
            OpValidation.Throw($"y must be [{cout},{f * h},{f * wd}] for x {OpValidation.Fmt(x)} and w {OpValidation.Fmt(w)} but is {OpValidation.Fmt(y)}.", nameof(y));
        NoAlias(x, nameof(x), y, nameof(y));
        return (cin, h, wd, cout, k);
    }

    public static (int Rows, int Cols) Transpose2d(Tensor x, Tensor y)
    {
        OpValidation.Activation(x, nameof(x));
        OpValidation.SameActivation(x, nameof(x), y, nameof(y));
        var (rows, cols) = OpValidation.FirstDimRows(x, nameof(x));
        if (rows < 1 || cols < 1 || cols > int.MaxValue)
            OpValidation.Throw($"x {OpValidation.Fmt(x)} must be a non-empty [R,C] matrix with C ≤ {int.MaxValue}.", nameof(x));
        OpValidation.SameCount(x, nameof(x), y, nameof(y));
        if (y.Shape.Length < 1 || y.Shape[0] != cols)
            OpValidation.Throw($"y must have {cols} rows (x {OpValidation.Fmt(x)} transposed) but is {OpValidation.Fmt(y)}.", nameof(y));
        NoAlias(x, nameof(x), y, nameof(y));
        return (rows, (int)cols);
    }

    private static void NoAlias(Tensor a, string aName, Tensor b, string bName)
    {
        if (ReferenceEquals(a.Allocation, b.Allocation))
            OpValidation.Throw($"{bName} must not share its device block with {aName}.", bName);
    }
}
