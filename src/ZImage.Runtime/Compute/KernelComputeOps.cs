using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels;
using ZImage.Kernels.Mma;

namespace ZImage.Runtime.Compute;

/// <summary>
/// The real <see cref="IComputeOps"/>: maps every op onto the ILGPU kernel families of <c>ZImage.Kernels</c>,
/// dispatching on the weight dtype (F32 / BF16 / F16). All families are created (JIT-compiled) in the constructor,
/// so constructing one is the warm-up and no generation pays a compile spike. Shapes are validated exactly as
/// <see cref="PlanningComputeOps"/> validates them. Launches are queued on the context's default stream;
/// <see cref="Download"/> and <see cref="DownloadBytes"/> wait for them.
/// Model-specific ops live in further partial files (e.g. <c>KernelComputeOps.Vae.cs</c>), which use the
/// kernel families exposed as internal properties.
/// </summary>
public sealed partial class KernelComputeOps : IComputeOps, IDisposable
{
    private bool _disposed;

    /// <summary>Creates (and compiles) every kernel family for <paramref name="context"/>.</summary>
    /// <param name="context">The accelerator and the resolved kernel variant.</param>
    public KernelComputeOps(KernelContext context)
    {
        Context = context ?? throw new ArgumentNullException(nameof(context));
        Gemm = new GemmKernels(context);
        Norm = new NormKernels(context);
        Elementwise = new ElementwiseKernels(context);
        AttentionKernels = new AttentionKernels(context);
        Rope = new RopeKernels(context);
        Conv = new ConvKernels(context);
        Diffusion = new DiffusionKernels(context);
        QuantGemm = new QuantGemmKernels(context);
        Converter = new ConvertKernels(context);
        if (context.TensorCores)
        {
            // sm_80+: bf16- and 8-bit-weight GEMMs and attention run on the tensor cores; the SIMT kernels stay for the rest.
            MmaGemm = new MmaGemmKernels(context);
            MmaAttention = new MmaAttentionKernels(context);
        }
        // Model-specific kernels (transpose) compile here too, so warm-up covers every kernel a generation launches.
        WarmUpModelKernels();
    }

    /// <summary>The kernel context (accelerator, variant, stream).</summary>
    public KernelContext Context { get; }

    /// <inheritdoc />
    public bool IsPlanning => false;

    internal GemmKernels Gemm { get; }
    internal NormKernels Norm { get; }
    internal ElementwiseKernels Elementwise { get; }
    internal AttentionKernels AttentionKernels { get; }
    internal RopeKernels Rope { get; }
    internal ConvKernels Conv { get; }
    internal DiffusionKernels Diffusion { get; }
    internal QuantGemmKernels QuantGemm { get; }
    internal ConvertKernels Converter { get; }
    internal MmaGemmKernels? MmaGemm { get; }
    internal MmaAttentionKernels? MmaAttention { get; }

    /// <inheritdoc />
    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        var (m, n, k) = OpValidation.Linear(x, w, bias, y);
        if (m == 0) return;
        ArrayView<float> b = bias is null ? default : bias.F32;
        switch (w.DType)
        {
            case TensorDType.F32: Gemm.Linear(x.F32, w.F32, b, y.F32, m, n, k); break;
            case TensorDType.BF16 when MmaGemm is not null: MmaGemm.Linear(x.F32, w.BF16, b, y.F32, m, n, k); break;
            case TensorDType.BF16: Gemm.Linear(x.F32, w.BF16, b, y.F32, m, n, k); break;
            case TensorDType.I8 when MmaGemm is not null: MmaGemm.LinearInt8(x.F32, w.I8, w.QuantScales, b, y.F32, m, n, k); break;
            case TensorDType.F8E4M3 when MmaGemm is not null: MmaGemm.LinearFp8E4M3(x.F32, w.F8E4M3, w.QuantScales, b, y.F32, m, n, k); break;
            case TensorDType.I8: QuantGemm.LinearInt8(x.F32, w.I8, w.QuantScales, b, y.F32, m, n, k); break;
            case TensorDType.F8E4M3: QuantGemm.LinearFp8E4M3(x.F32, w.F8E4M3, w.QuantScales, b, y.F32, m, n, k); break;
            default: Gemm.Linear(x.F32, w.F16, b, y.F32, m, n, k); break;
        }
    }

    /// <inheritdoc />
    public void RmsNorm(Tensor x, Tensor? weight, float eps, Tensor y)
    {
        var (rows, d) = OpValidation.RowNorm(x, weight, eps, y);
        Norm.RmsNorm(x.F32, Opt(weight), eps, y.F32, rows, d);
    }

    /// <inheritdoc />
    public void LayerNorm(Tensor x, float eps, Tensor y)
    {
        var (rows, d) = OpValidation.RowNorm(x, null, eps, y);
        Norm.LayerNorm(x.F32, default, eps, y.F32, rows, d);
    }

    /// <inheritdoc />
    public void GroupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, bool silu, Tensor y)
    {
        var (c, h, w) = OpValidation.GroupNorm(x, groups, gamma, beta, eps, y);
        Norm.GroupNorm(x.F32, groups, gamma.F32, beta.F32, eps, silu, y.F32, c, h * w);
    }

    /// <inheritdoc />
    public void Silu(Tensor x, Tensor y)
    {
        OpValidation.Unary(x, y);
        Elementwise.Silu(x.F32, y.F32, x.ElementCount);
    }

    /// <inheritdoc />
    public void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        OpValidation.Binary(gate, nameof(gate), up, nameof(up), y, nameof(y));
        Elementwise.SwiGlu(gate.F32, up.F32, y.F32, gate.ElementCount);
    }

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y)
    {
        OpValidation.Binary(a, nameof(a), b, nameof(b), y, nameof(y));
        Elementwise.Add(a.F32, b.F32, y.F32, a.ElementCount);
    }

    /// <inheritdoc />
    public void Attention(Tensor q, Tensor k, Tensor v, float scale, bool causal, Tensor o)
    {
        var (sq, sk, hq, hkv, dh) = OpValidation.Attention(q, k, v, scale, o);
        if (sq == 0) return;
        if (MmaAttention is not null && MmaAttentionKernels.SupportsHeadDim(dh))
            MmaAttention.Forward(q.F32, k.F32, v.F32, o.F32, sq, sk, hq, hkv, dh, scale, causal);
        else
            AttentionKernels.Forward(q.F32, k.F32, v.F32, o.F32, sq, sk, hq, hkv, dh, scale, causal);
    }

    /// <inheritdoc />
    public void Copy(Tensor src, Tensor dst)
    {
        OpValidation.Copy(src, dst);
        if (src.ElementCount == 0) return;
        int elem = Tensor.ElementSize(src.DType);
        ByteView(src, elem).CopyTo(Context.Stream, ByteView(dst, elem));
    }

    /// <inheritdoc />
    public void Convert(Tensor src, Tensor dst)
    {
        OpValidation.Convert(src, dst);
        if (src.DType == dst.DType) Copy(src, dst);
        else if (src.DType == TensorDType.F32) Converter.ToBf16(src.F32, dst.BF16, src.ElementCount);
        else Converter.ToF32(src.BF16, dst.F32, src.ElementCount);
    }

    /// <inheritdoc />
    public void Upload(ReadOnlySpan<float> host, Tensor dst)
    {
        OpValidation.Upload(host.Length, dst);
        if (host.Length == 0) return;
        dst.F32.CopyFromCPU(Context.Stream, host);
    }

    /// <inheritdoc />
    public float[] Download(Tensor src)
    {
        OpValidation.F32(src, nameof(src));
        var result = new float[src.ElementCount];
        if (result.Length == 0) return result;
        Synchronize();
        src.F32.CopyToCPU(Context.Stream, result.AsSpan());
        Synchronize();
        return result;
    }

    /// <inheritdoc />
    public void Synchronize() => Context.Stream.Synchronize();

    // ---- transformer ops -----------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void RopeInterleaved(Tensor x, Tensor cos, Tensor sin)
    {
        var (s, h, dh) = OpValidation.Rope(x, cos, sin);
        if (s == 0 || h == 0) return;
        Rope.ApplyInterleaved(x.F32, cos.F32, sin.F32, s, h, dh);
    }

    /// <inheritdoc />
    public void RopeInterleaved(Tensor q, Tensor k, Tensor cos, Tensor sin)
    {
        OpValidation.RopePair(q, k, cos, sin);
        if (q.Shape[0] == 0) return;
        Rope.ApplyInterleaved(q.F32, k.F32, cos.F32, sin.F32, q.Shape[0], q.Shape[1], k.Shape[1], q.Shape[2]);
    }

    /// <inheritdoc />
    public void Modulate(Tensor x, Tensor scale, Tensor y)
    {
        var (rows, d) = OpValidation.Modulate(x, scale, y);
        Elementwise.Modulate(x.F32, scale.F32, y.F32, rows, d);
    }

    /// <inheritdoc />
    public void GatedResidual(Tensor residual, Tensor branch, Tensor? gate)
    {
        var (rows, d) = OpValidation.GatedResidual(residual, branch, gate);
        if (gate is null) Elementwise.Add(residual.F32, branch.F32, residual.F32, residual.ElementCount);
        else Elementwise.GatedResidual(residual.F32, branch.F32, gate.F32, rows, d);
    }

    /// <inheritdoc />
    public void RmsNormModulate(Tensor x, Tensor? weight, Tensor scale, float eps, Tensor y)
    {
        var (rows, d) = OpValidation.RmsNormModulate(x, weight, scale, eps, y);
        Norm.RmsNormModulate(x.F32, Opt(weight), scale.F32, eps, y.F32, rows, d);
    }

    /// <inheritdoc />
    public void RmsNormGatedResidual(Tensor branch, Tensor? weight, Tensor? gate, float eps, Tensor residual)
    {
        var (rows, d) = OpValidation.RmsNormGatedResidual(branch, weight, gate, eps, residual);
        Norm.RmsNormGatedResidual(branch.F32, Opt(weight), Opt(gate), eps, residual.F32, rows, d);
    }

    /// <inheritdoc />
    public void LayerNormModulate(Tensor x, Tensor? scale, float eps, Tensor y)
    {
        var (rows, d) = OpValidation.LayerNormModulate(x, scale, eps, y);
        Norm.LayerNorm(x.F32, Opt(scale), eps, y.F32, rows, d);
    }

    /// <inheritdoc />
    public void Tanh(Tensor x, Tensor y)
    {
        OpValidation.Unary(x, y);
        Elementwise.Tanh(x.F32, y.F32, x.ElementCount);
    }

    /// <inheritdoc />
    public void CopyRows(Tensor src, int srcRow, Tensor dst, int dstRow, int rowCount)
    {
        long width = OpValidation.CopyRows(src, srcRow, dst, dstRow, rowCount);
        if (rowCount == 0 || width == 0) return;
        if (src.DType == TensorDType.F32 && width <= int.MaxValue)
        {
            Elementwise.CopyRows(src.F32, srcRow, dst.F32, dstRow, rowCount, (int)width);
            return;
        }
        int elem = Tensor.ElementSize(src.DType);
        long n = rowCount * width * elem;
        ByteView(src, elem).SubView(srcRow * width * elem, n).CopyTo(Context.Stream, ByteView(dst, elem).SubView(dstRow * width * elem, n));
    }

    /// <inheritdoc />
    public void FillRows(Tensor row, Tensor dst, int startRow, int rowCount)
    {
        int width = OpValidation.FillRows(row, dst, startRow, rowCount);
        Elementwise.FillRows(row.F32, dst.F32, startRow, rowCount, width);
    }

    /// <inheritdoc />
    public void Patchify(Tensor latents, int patchSize, Tensor patches)
    {
        var (c, h, w) = OpValidation.Patchify(latents, patchSize, patches);
        Diffusion.Patchify(latents.F32, patches.F32, c, h, w);
    }

    /// <inheritdoc />
    public void Unpatchify(Tensor patches, int patchSize, Tensor latents)
    {
        var (c, h, w) = OpValidation.Patchify(latents, patchSize, patches);
        Diffusion.Unpatchify(patches.F32, latents.F32, c, h, w);
    }

    // ---- diffusion / pipeline ops --------------------------------------------------------------------------------

    /// <inheritdoc />
    public void EulerStep(Tensor latents, Tensor modelOutput, float dt)
    {
        OpValidation.Finite(dt, nameof(dt));
        OpValidation.BinaryF32(latents, nameof(latents), modelOutput, nameof(modelOutput), latents, nameof(latents));
        Diffusion.EulerStep(latents.F32, modelOutput.F32, dt, latents.ElementCount);
    }

    /// <inheritdoc />
    public void CfgCombine(Tensor positive, Tensor negative, float guidance, float normalization, Tensor prediction)
    {
        OpValidation.Finite(guidance, nameof(guidance));
        OpValidation.Finite(normalization, nameof(normalization));
        OpValidation.BinaryF32(positive, nameof(positive), negative, nameof(negative), prediction, nameof(prediction));
        Diffusion.CfgCombine(positive.F32, negative.F32, guidance, normalization, prediction.F32, positive.ElementCount);
    }

    /// <inheritdoc />
    public void ToRgb8(Tensor image, Tensor rgb)
    {
        OpValidation.Rgb8(image, 3, rgb, nameof(image));
        Diffusion.ImageToRgb8(image.F32, rgb.U8, image.Shape[1], image.Shape[2]);
    }

    /// <inheritdoc />
    public void LatentPreview(Tensor latents, Tensor projection, Tensor? bias, Tensor rgb)
    {
        OpValidation.Preview(latents, projection, bias, rgb);
        Diffusion.LatentPreview(latents.F32, projection.F32, Opt(bias), rgb.U8, latents.Shape[0], latents.Shape[1], latents.Shape[2]);
    }

    /// <inheritdoc />
    public void DenormalizeLatents(Tensor latents, float scalingFactor, float shiftFactor, Tensor y)
    {
        OpValidation.Denormalize(latents, scalingFactor, shiftFactor, y);
        Diffusion.DenormalizeLatents(latents.F32, scalingFactor, shiftFactor, y.F32, latents.ElementCount);
    }

    /// <inheritdoc />
    public byte[] DownloadBytes(Tensor src)
    {
        OpValidation.DType(src, TensorDType.U8, nameof(src));
        var result = new byte[src.ElementCount];
        if (result.Length == 0) return result;
        Synchronize();
        src.U8.CopyToCPU(Context.Stream, result.AsSpan());
        Synchronize();
        return result;
    }

    /// <summary>Releases the kernel families' scratch buffers.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Diffusion.Dispose();
        MmaGemm?.Dispose();
    }

    private static ArrayView<float> Opt(Tensor? t) => t is null ? default : t.F32;

    private static ArrayView<byte> ByteView(Tensor t, int elem) =>
        t.Allocation.GetView<byte>((t.ElementOffset + t.ElementCount) * elem).SubView(t.ElementOffset * elem, t.ElementCount * elem);
}
