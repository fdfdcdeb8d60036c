namespace ZImage.Runtime.Compute;

/// <summary>
/// The tensor operations the models are written against. Two implementations: one launches ILGPU kernels
/// (<c>KernelComputeOps</c>), the other does nothing (<c>PlanningComputeOps</c>), so a forward pass in planning mode
/// makes exactly the same allocations without running anything. Activations are F32 or BF16 (see <see cref="ComputeContext.Activations"/>), row-major; weight
/// matrices may be F32, F16 or BF16. Ops never allocate: callers pass outputs allocated from the caching allocator.
/// Model-specific ops may be added in further <c>partial</c> files (e.g. <c>IComputeOps.Vae.cs</c>).
/// </summary>
public partial interface IComputeOps
{
    /// <summary>Whether this is the planning (no-op) implementation.</summary>
    bool IsPlanning { get; }

    /// <summary>y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]); fp32 accumulation whatever the weight dtype.</summary>
    void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y);

    /// <summary>Row-wise RMSNorm over the last dimension D: y = x·rsqrt(mean(x²)+eps)·w (w may be null). x and y may alias.</summary>
    void RmsNorm(Tensor x, Tensor? weight, float eps, Tensor y);

    /// <summary>Row-wise LayerNorm without affine over the last dimension (biased variance).</summary>
    void LayerNorm(Tensor x, float eps, Tensor y);

    /// <summary>GroupNorm of x[C,H,W] with affine gamma/beta[C], optionally followed by SiLU (fused).</summary>
    void GroupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, bool silu, Tensor y);

    /// <summary>y = SiLU(x).</summary>
    void Silu(Tensor x, Tensor y);

    /// <summary>y = SiLU(gate) ⊙ up.</summary>
    void SwiGlu(Tensor gate, Tensor up, Tensor y);

    /// <summary>y = a + b (same shapes; y may alias a or b).</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>
    /// Multi-head attention, o = softmax(q·kᵀ·scale [+ causal mask])·v, with q[Sq,Hq,Dh], k/v[Sk,Hkv,Dh], o[Sq,Hq,Dh];
    /// Hq must be a multiple of Hkv (GQA: query head h uses kv head h/(Hq/Hkv)). Tiled with online softmax: never
    /// materialises all heads' Sq×Sk scores.
    /// </summary>
    void Attention(Tensor q, Tensor k, Tensor v, float scale, bool causal, Tensor o);

    /// <summary>Copies all of src into dst (same element count).</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>
    /// Copies src into dst converting between activation storage formats (F32 ⇄ BF16; the same dtype is a copy):
    /// where a bf16 model workspace meets float32 pipeline data. Narrowing rounds to nearest even. Same element count.
    /// </summary>
    void Convert(Tensor src, Tensor dst);

    /// <summary>Uploads host floats into a F32 tensor.</summary>
    void Upload(ReadOnlySpan<float> host, Tensor dst);

    /// <summary>Downloads a F32 tensor to host (waits for queued work).</summary>
    float[] Download(Tensor src);

    /// <summary>Waits for all queued device work.</summary>
    void Synchronize();
}
