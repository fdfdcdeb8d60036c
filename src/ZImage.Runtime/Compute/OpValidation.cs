namespace ZImage.Runtime.Compute;

/// <summary>
/// Shape and dtype checks shared by every <see cref="IComputeOps"/> implementation, so planning rejects exactly what
/// the kernels reject. Throw helpers are kept off the success path.
/// </summary>
internal static class OpValidation
{
    public static string Fmt(Tensor t) => $"[{string.Join(",", t.Shape)}] {t.DType}";

    public static void F32(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.DType != TensorDType.F32) Throw($"{name} must be F32 but is {Fmt(t)}.", name);
    }

    public static void DType(Tensor t, TensorDType dtype, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.DType != dtype) Throw($"{name} must be {dtype} but is {Fmt(t)}.", name);
    }

    public static void Rank(Tensor t, int rank, string name)
    {
        if (t.Shape.Length != rank) Throw($"{name} must have rank {rank} but is {Fmt(t)}.", name);
    }

    public static void MinRank(Tensor t, int rank, string name)
    {
        if (t.Shape.Length < rank) Throw($"{name} must have rank >= {rank} but is {Fmt(t)}.", name);
    }

    public static void Count(Tensor t, long count, string name)
    {
        if (t.ElementCount != count) Throw($"{name} must have {count} elements but is {Fmt(t)} ({t.ElementCount}).", name);
    }

    public static void SameCount(Tensor a, string aName, Tensor b, string bName)
    {
        if (a.ElementCount != b.ElementCount)
            Throw($"{bName} {Fmt(b)} must have as many elements as {aName} {Fmt(a)}.", bName);
    }

    public static void Positive(float value, string name)
    {
        if (!(value > 0) || float.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite value > 0.");
    }

    public static void NonNegative(float value, string name)
    {
        if (!(value >= 0) || float.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite value >= 0.");
    }

    public static void Finite(float value, string name)
    {
        if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite.");
    }

    /// <summary>Row width of a tensor seen as <c>[rows, last dim]</c>.</summary>
    public static (long Rows, int Width) AsRows(Tensor t, string name)
    {
        MinRank(t, 1, name);
        int w = t.Dim(-1);
        if (w <= 0) Throw($"{name} has an empty last dimension: {Fmt(t)}.", name);
        return (t.ElementCount / w, w);
    }

    /// <summary>Rows of the first dimension and the elements per row.</summary>
    public static (int Rows, long Width) FirstDimRows(Tensor t, string name)
    {
        MinRank(t, 1, name);
        int r = t.Shape[0];
        return (r, r == 0 ? 0 : t.ElementCount / r);
    }

    /// <summary>A float weight (F32, F16, BF16); an 8-bit matrix is a <see cref="WeightFormatNotSupportedException"/> naming <paramref name="op"/>.</summary>
    public static void MatrixDType(Tensor w, string name, [System.Runtime.CompilerServices.CallerMemberName] string op = "")
    {
        ArgumentNullException.ThrowIfNull(w, name);
        if (WeightQuantization.IsQuantized(w.DType))
            throw new WeightFormatNotSupportedException(op, w.DType, "F32, F16, BF16", name);
        if (w.DType is not (TensorDType.F32 or TensorDType.F16 or TensorDType.BF16))
            Throw($"{name} must be F32, F16 or BF16 but is {Fmt(w)}.", name);
    }

    // ---- per-op checks -------------------------------------------------------------------------------------------

    public static (int M, int N, int K) Linear(Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        Activation(x, nameof(x));
        ArgumentNullException.ThrowIfNull(w);
        // Linear is the one op with 8-bit kernels (codes dequantised inside the GEMM).
        if (!WeightQuantization.IsQuantized(w.DType)) MatrixDType(w, nameof(w));
        Rank(w, 2, nameof(w));
        SameActivation(x, nameof(x), y, nameof(y));
        var (rows, k) = AsRows(x, nameof(x));
        int n = w.Shape[0];
        if (w.Shape[1] != k) Throw($"w {Fmt(w)} must be [N,{k}] to match x {Fmt(x)}.", nameof(w));
        if (bias is not null)
        {
            F32(bias, nameof(bias));
            Count(bias, n, nameof(bias));
        }
        if (y.Dim(-1) != n || y.ElementCount != rows * n)
            Throw($"y must be [{rows},{n}] for x {Fmt(x)} and w {Fmt(w)} but is {Fmt(y)}.", nameof(y));
        return ((int)rows, n, k);
    }

    public static (int Rows, int D) RowNorm(Tensor x, Tensor? weight, float eps, Tensor y)
    {
        Activation(x, nameof(x));
        SameActivation(x, nameof(x), y, nameof(y));
        SameCount(x, nameof(x), y, nameof(y));
        NonNegative(eps, nameof(eps));
        var (rows, d) = AsRows(x, nameof(x));
        if (weight is not null)
        {
            F32(weight, nameof(weight));
            Count(weight, d, nameof(weight));
        }
        return ((int)rows, d);
    }

    public static (int C, int H, int W) GroupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, Tensor y)
    {
        Activation(x, nameof(x));
        Rank(x, 3, nameof(x));
        SameActivation(x, nameof(x), y, nameof(y));
        SameCount(x, nameof(x), y, nameof(y));
        NonNegative(eps, nameof(eps));
        int c = x.Shape[0];
        if (groups <= 0 || c % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"groups must be > 0 and divide the {c} channels.");
        F32(gamma, nameof(gamma));
        Count(gamma, c, nameof(gamma));
        F32(beta, nameof(beta));
        Count(beta, c, nameof(beta));
        return (c, x.Shape[1], x.Shape[2]);
    }

    /// <summary>An activation op's x and y: F32 or BF16, the same dtype, the same element count.</summary>
    public static void Unary(Tensor x, Tensor y)
    {
        Activation(x, nameof(x));
        SameActivation(x, nameof(x), y, nameof(y));
        SameCount(x, nameof(x), y, nameof(y));
    }

    /// <summary>An activation op's three operands: F32 or BF16, one dtype, one element count.</summary>
    public static void Binary(Tensor a, string aName, Tensor b, string bName, Tensor y, string yName)
    {
        Activation(a, aName);
        SameActivation(a, aName, b, bName);
        SameActivation(a, aName, y, yName);
        SameCount(a, aName, b, bName);
        SameCount(a, aName, y, yName);
    }

    /// <summary>A pipeline op's x and y (latents, images, noise): always F32, whatever the activation format.</summary>
    public static void UnaryF32(Tensor x, Tensor y)
    {
        F32(x, nameof(x));
        F32(y, nameof(y));
        SameCount(x, nameof(x), y, nameof(y));
    }

    /// <summary>A pipeline op's three operands (latents, model output, noise, masks): always F32.</summary>
    public static void BinaryF32(Tensor a, string aName, Tensor b, string bName, Tensor y, string yName)
    {
        F32(a, aName);
        F32(b, bName);
        F32(y, yName);
        SameCount(a, aName, b, bName);
        SameCount(a, aName, y, yName);
    }

    public static (int Sq, int Sk, int Hq, int Hkv, int Dh) Attention(Tensor q, Tensor k, Tensor v, float scale, Tensor o)
    {
        Activation(q, nameof(q));
        SameActivation(q, nameof(q), k, nameof(k)); SameActivation(q, nameof(q), v, nameof(v)); SameActivation(q, nameof(q), o, nameof(o));
        Rank(q, 3, nameof(q)); Rank(k, 3, nameof(k)); Rank(v, 3, nameof(v)); Rank(o, 3, nameof(o));
        Positive(scale, nameof(scale));
        int sq = q.Shape[0], hq = q.Shape[1], dh = q.Shape[2];
        int sk = k.Shape[0], hkv = k.Shape[1];
        if (k.Shape[2] != dh) Throw($"k {Fmt(k)} must have head dim {dh} like q {Fmt(q)}.", nameof(k));
        if (!v.Shape.SequenceEqual(k.Shape)) Throw($"v {Fmt(v)} must have the shape of k {Fmt(k)}.", nameof(v));
        if (hkv <= 0 || hq % hkv != 0) Throw($"q heads {hq} must be a multiple of kv heads {hkv}.", nameof(k));
        if (!o.Shape.SequenceEqual(q.Shape)) Throw($"o {Fmt(o)} must have the shape of q {Fmt(q)}.", nameof(o));
        return (sq, sk, hq, hkv, dh);
    }

    public static void Copy(Tensor src, Tensor dst)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(dst);
        if (src.DType != dst.DType) Throw($"dst {Fmt(dst)} must have the dtype of src {Fmt(src)}.", nameof(dst));
        SameCount(src, nameof(src), dst, nameof(dst));
    }

    public static void Convert(Tensor src, Tensor dst)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(dst);
        Activation(src, nameof(src));
        Activation(dst, nameof(dst));
        SameCount(src, nameof(src), dst, nameof(dst));
    }

    /// <summary>An activation operand: F32 or BF16.</summary>
    public static void Activation(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.DType is not (TensorDType.F32 or TensorDType.BF16)) Throw($"{name} must be an F32 or BF16 activation but is {Fmt(t)}.", name);
    }

    /// <summary>
    /// A further activation operand of the op whose first activation is <paramref name="first"/>: the kernels are
    /// specialised per storage format, so every activation operand of one call has the same dtype (parameters such as
    /// weights, biases, norm weights, per-row scale/gate vectors and RoPE tables stay F32 either way).
    /// </summary>
    public static void SameActivation(Tensor first, string firstName, Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.DType != first.DType) Throw($"{name} must have the activation dtype of {firstName} ({first.DType}) but is {Fmt(t)}.", name);
    }

    public static void Upload(int hostLength, Tensor dst)
    {
        F32(dst, nameof(dst));
        if (hostLength != dst.ElementCount) Throw($"host has {hostLength} floats but dst {Fmt(dst)} holds {dst.ElementCount}.", "host");
    }

    public static (int S, int H, int Dh) Rope(Tensor x, Tensor cos, Tensor sin)
    {
        Activation(x, nameof(x)); F32(cos, nameof(cos)); F32(sin, nameof(sin));
        Rank(x, 3, nameof(x));
        int s = x.Shape[0], h = x.Shape[1], dh = x.Shape[2];
        if (dh % 2 != 0) Throw($"x {Fmt(x)} must have an even head dim.", nameof(x));
        if (cos.ElementCount != (long)s * (dh / 2) || cos.Dim(-1) != dh / 2) Throw($"cos must be [{s},{dh / 2}] for x {Fmt(x)} but is {Fmt(cos)}.", nameof(cos));
        if (sin.ElementCount != (long)s * (dh / 2) || sin.Dim(-1) != dh / 2) Throw($"sin must be [{s},{dh / 2}] for x {Fmt(x)} but is {Fmt(sin)}.", nameof(sin));
        return (s, h, dh);
    }

    public static (int Rows, int D) Broadcast(Tensor x, string xName, Tensor vector, string vName)
    {
        var (rows, d) = AsRows(x, xName);
        F32(vector, vName);
        Count(vector, d, vName);
        return ((int)rows, d);
    }

    public static (int Rows, int D) Modulate(Tensor x, Tensor scale, Tensor y)
    {
        Unary(x, y);
        return Broadcast(x, nameof(x), scale, nameof(scale));
    }

    public static (int Rows, int D) RmsNormModulate(Tensor x, Tensor? weight, Tensor scale, float eps, Tensor y)
    {
        var (rows, d) = RowNorm(x, weight, eps, y);
        F32(scale, nameof(scale));
        Count(scale, d, nameof(scale));
        return (rows, d);
    }

    public static (int Rows, int D) RmsNormGatedResidual(Tensor branch, Tensor? weight, Tensor? gate, float eps, Tensor residual)
    {
        var (rows, d) = RowNorm(branch, weight, eps, residual);
        if (gate is not null)
        {
            F32(gate, nameof(gate));
            Count(gate, d, nameof(gate));
        }
        if (ReferenceEquals(branch.Allocation, residual.Allocation) && branch.ElementOffset == residual.ElementOffset)
            Throw("branch must not alias residual.", nameof(branch));
        return (rows, d);
    }

    public static (int Rows, int D) LayerNormModulate(Tensor x, Tensor? scale, float eps, Tensor y)
    {
        var (rows, d) = RowNorm(x, null, eps, y);
        if (scale is not null)
        {
            F32(scale, nameof(scale));
            Count(scale, d, nameof(scale));
        }
        return (rows, d);
    }

    public static (int Rows, int D) GatedResidual(Tensor residual, Tensor branch, Tensor? gate)
    {
        Activation(residual, nameof(residual));
        SameActivation(residual, nameof(residual), branch, nameof(branch));
        SameCount(residual, nameof(residual), branch, nameof(branch));
        var (rows, d) = AsRows(residual, nameof(residual));
        if (gate is not null)
        {
            F32(gate, nameof(gate));
            Count(gate, d, nameof(gate));
        }
        return ((int)rows, d);
    }

    public static long CopyRows(Tensor src, int srcRow, Tensor dst, int dstRow, int rowCount)
    {
        Copy2(src, dst);
        var (srcRows, width) = FirstDimRows(src, nameof(src));
        var (dstRows, dstWidth) = FirstDimRows(dst, nameof(dst));
        if (width != dstWidth) Throw($"dst {Fmt(dst)} rows must have the width of src {Fmt(src)} rows.", nameof(dst));
        if (rowCount < 0) throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, "rowCount must be >= 0.");
        if (srcRow < 0 || srcRow + rowCount > srcRows)
            throw new ArgumentOutOfRangeException(nameof(srcRow), srcRow, $"src rows {srcRow}..{srcRow + rowCount} must lie in 0..{srcRows}.");
        if (dstRow < 0 || dstRow + rowCount > dstRows)
            throw new ArgumentOutOfRangeException(nameof(dstRow), dstRow, $"dst rows {dstRow}..{dstRow + rowCount} must lie in 0..{dstRows}.");
        return width;

        static void Copy2(Tensor s, Tensor d)
        {
            ArgumentNullException.ThrowIfNull(s, "src");
            ArgumentNullException.ThrowIfNull(d, "dst");
            if (s.DType != d.DType) Throw($"dst {Fmt(d)} must have the dtype of src {Fmt(s)}.", "dst");
        }
    }

    public static int FillRows(Tensor row, Tensor dst, int startRow, int rowCount)
    {
        F32(row, nameof(row)); // a parameter (e.g. the pad token), written into an activation of either format
        Activation(dst, nameof(dst));
        var (rows, width) = FirstDimRows(dst, nameof(dst));
        if (row.ElementCount != width) Throw($"row {Fmt(row)} must have {width} elements to fill rows of dst {Fmt(dst)}.", nameof(row));
        if (rowCount < 0) throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, "rowCount must be >= 0.");
        if (startRow < 0 || startRow + rowCount > rows)
            throw new ArgumentOutOfRangeException(nameof(startRow), startRow, $"rows {startRow}..{startRow + rowCount} must lie in 0..{rows}.");
        return (int)width;
    }

    public static (int C, int H, int W) Patchify(Tensor latents, int patchSize, Tensor patches)
    {
        F32(latents, nameof(latents));
        F32(patches, nameof(patches));
        Rank(latents, 3, nameof(latents));
        Rank(patches, 2, nameof(patches));
        if (patchSize != 2) throw new ArgumentOutOfRangeException(nameof(patchSize), patchSize, "patchSize must be 2 (the only patch size of Z-Image).");
        int c = latents.Shape[0], h = latents.Shape[1], w = latents.Shape[2];
        if (h % patchSize != 0 || w % patchSize != 0)
            Throw($"latents {Fmt(latents)} spatial size must be a multiple of the patch size {patchSize}.", nameof(latents));
        int tokens = h / patchSize * (w / patchSize);
        if (patches.Shape[1] != patchSize * patchSize * c || patches.Shape[0] < tokens)
            Throw($"patches must be [>= {tokens},{patchSize * patchSize * c}] for latents {Fmt(latents)} but is {Fmt(patches)}.", nameof(patches));
        return (c, h, w);
    }

    public static void RopePair(Tensor q, Tensor k, Tensor cos, Tensor sin)
    {
        var (s, _, dh) = Rope(q, cos, sin);
        var (sk, _, dhk) = Rope(k, cos, sin);
        if (sk != s || dhk != dh) Throw($"k {Fmt(k)} must have the tokens and head dim of q {Fmt(q)}.", nameof(k));
    }

    public static void Preview(Tensor latents, Tensor projection, Tensor? bias, Tensor rgb)
    {
        F32(latents, nameof(latents));
        Rank(latents, 3, nameof(latents));
        int c = latents.Shape[0];
        F32(projection, nameof(projection));
        if (projection.ElementCount != c * 3L || projection.Dim(-1) != 3)
            Throw($"projection must be [{c},3] for latents {Fmt(latents)} but is {Fmt(projection)}.", nameof(projection));
        if (bias is not null)
        {
            F32(bias, nameof(bias));
            Count(bias, 3, nameof(bias));
        }
        Rgb8(latents, c, rgb, nameof(latents));
    }

    public static void Denormalize(Tensor latents, float scalingFactor, float shiftFactor, Tensor y)
    {
        Finite(scalingFactor, nameof(scalingFactor));
        if (scalingFactor == 0) throw new ArgumentOutOfRangeException(nameof(scalingFactor), scalingFactor, "scalingFactor must be non-zero.");
        Finite(shiftFactor, nameof(shiftFactor));
        UnaryF32(latents, y);
    }

    public static void Rgb8(Tensor image, int channels, Tensor rgb, string imageName)
    {
        F32(image, imageName);
        Rank(image, 3, imageName);
        if (image.Shape[0] != channels) Throw($"{imageName} must have {channels} channels but is {Fmt(image)}.", imageName);
        DType(rgb, TensorDType.U8, nameof(rgb));
        int h = image.Shape[1], w = image.Shape[2];
        if (rgb.Shape.Length != 3 || rgb.Shape[0] != h || rgb.Shape[1] != w || rgb.Shape[2] != 3)
            Throw($"rgb must be [{h},{w},3] U8 for {imageName} {Fmt(image)} but is {Fmt(rgb)}.", nameof(rgb));
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Throw(string message, string? paramName) => throw new TensorShapeException(message, paramName);
}
