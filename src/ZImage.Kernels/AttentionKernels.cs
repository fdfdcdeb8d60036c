using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>Problem size and work split of one attention launch.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct AttnShape
{
    public int Sq, Sk, Hq, Hkv, Dh;
    /// <summary>Query heads per KV head (GQA).</summary>
    public int HeadsPerKv;
    public float Scale;
    /// <summary>1 for a causal mask (key j ≤ query i).</summary>
    public int Causal;
    /// <summary>Portable variant: number of coarse threads.</summary>
    public int Threads;
    /// <summary>GPU variant: query and key tile height (rows staged in shared memory per step).</summary>
    public int Tile;
}

/// <summary>
/// Scaled dot-product attention, <c>o = softmax(q·kᵀ·scale [+ causal mask])·v</c>, with token-major, heads-inner
/// layouts <c>q[Sq,Hq,Dh]</c>, <c>k/v[Sk,Hkv,Dh]</c>, <c>o[Sq,Hq,Dh]</c>. Hq must be a multiple of Hkv (grouped-query
/// attention: query head h reads KV head h / (Hq/Hkv)). Both variants use an online softmax (running max and sum,
/// rescaling the accumulator when the max grows), so no Sq×Sk score matrix is ever materialised:
/// <list type="bullet">
/// <item><see cref="KernelVariant.Gpu"/>: one 128-thread group per (query tile, head). Q, K, V and the output
/// accumulator tiles live in dynamic shared memory (≤ 48 KiB); the tile height shrinks with the head dim (16 rows up
/// to Dh 128, 8 up to 256, 4 up to 512, ...). Causal groups skip key tiles above their last query.
/// Head dims above <see cref="MaxTiledHeadDim"/> run the portable kernel instead (documented fallback).</item>
/// <item><see cref="KernelVariant.Portable"/>: about <see cref="KernelContext.PortableChunks"/> coarse threads, each
/// owning a contiguous range of (query row, head) pairs and looping over the keys in blocks of 8 (8 scores in
/// registers, one online-softmax update per block); the output row doubles as the accumulator, so no scratch
/// memory is needed.</item>
/// </list>
/// Launches are queued on <see cref="KernelContext.Stream"/>; <c>o</c> must not overlap the inputs.
/// </summary>
public sealed class AttentionKernels
{
    /// <summary>Largest head dim the shared-memory (GPU) kernel handles; larger ones use the portable kernel.</summary>
    public const int MaxTiledHeadDim = 2048;

    private const int GroupThreads = 128;
    /// <summary>Portable variant: query rows (of one head) that share each K/V load.</summary>
    private const int PortableRows = 4;
    private const int SharedFloatBudget = 48 * 1024 / sizeof(float);

    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnShape> _portable;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnShape>? _gpu;

    /// <summary>Compiles the kernels of <paramref name="context"/>'s variant (the GPU variant also compiles its fallback).</summary>
    /// <param name="context">Accelerator and variant.</param>
    public AttentionKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        _portable = context.Accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnShape>(PortableKernel);
        if (context.Variant == KernelVariant.Gpu)
            _gpu = context.Accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnShape>(GpuKernel);
    }

    /// <summary>The context the kernels were compiled for.</summary>
    public KernelContext Context => _ctx;

    /// <summary>Runs attention for one sequence (batch 1).</summary>
    /// <param name="q">Queries [Sq,Hq,Dh].</param>
    /// <param name="k">Keys [Sk,Hkv,Dh].</param>
    /// <param name="v">Values [Sk,Hkv,Dh].</param>
    /// <param name="o">Output [Sq,Hq,Dh]; fully overwritten.</param>
    /// <param name="sq">Query tokens (≥ 1).</param>
    /// <param name="sk">Key/value tokens (≥ 1; equal to <paramref name="sq"/> when causal).</param>
    /// <param name="hq">Query heads (a positive multiple of <paramref name="hkv"/>).</param>
    /// <param name="hkv">Key/value heads (≥ 1).</param>
    /// <param name="headDim">Channels per head (≥ 1).</param>
    /// <param name="scale">Score scale, usually 1/√headDim (finite).</param>
    /// <param name="causal">Mask keys after the query (key j ≤ query i).</param>
    public void Forward(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        int sq, int sk, int hq, int hkv, int headDim, float scale, bool causal)
    {
        Validate(q.Length, k.Length, v.Length, o.Length, sq, sk, hq, hkv, headDim, scale, causal);

        var s = new AttnShape
        {
            Sq = sq, Sk = sk, Hq = hq, Hkv = hkv, Dh = headDim, HeadsPerKv = hq / hkv,
            Scale = scale, Causal = causal ? 1 : 0,
        };
        if (_gpu is not null && headDim <= MaxTiledHeadDim)
        {
            s.Tile = TileFor(headDim);
            var config = new KernelConfig(
                new Index3D((sq + s.Tile - 1) / s.Tile, hq, 1),
                new Index3D(GroupThreads, 1, 1),
                SharedMemoryConfig.RequestDynamic<float>(SharedFloats(s.Tile, headDim)));
            _gpu(_ctx.Stream, config, q, k, v, o, s);
        }
        else
        {
            long units = (long)((sq + PortableRows - 1) / PortableRows) * hq;
            s.Threads = (int)Math.Min(_ctx.PortableChunks, units);
            _portable(_ctx.Stream, s.Threads, q, k, v, o, s);
        }
    }

    /// <summary>The argument checks of an attention launch (shared with the tensor-core attention).</summary>
    internal static void Validate(long qLength, long kLength, long vLength, long oLength,
        int sq, int sk, int hq, int hkv, int headDim, float scale, bool causal)
    {
        GemmGuard.InRange(sq, 1, int.MaxValue);
        GemmGuard.InRange(sk, 1, int.MaxValue);
        GemmGuard.InRange(hkv, 1, int.MaxValue);
        GemmGuard.InRange(hq, hkv, int.MaxValue);
        GemmGuard.InRange(headDim, 1, int.MaxValue);
        if (hq % hkv != 0)
            GemmGuard.ThrowArgument(nameof(hq), $"hq = {hq} must be a multiple of hkv = {hkv} (grouped-query attention).");
        if (causal && sq != sk)
            GemmGuard.ThrowArgument(nameof(sk), $"A causal mask needs sq == sk, but sq = {sq} and sk = {sk}.");
        if (!float.IsFinite(scale))
            GemmGuard.ThrowArgument(nameof(scale), $"scale = {scale} must be finite.");
        long qLen = (long)sq * hq * headDim, kvLen = (long)sk * hkv * headDim;
        GemmGuard.FitsInt32(qLen, "q");
        GemmGuard.FitsInt32(kvLen, "k");
        GemmGuard.Holds(qLength, qLen, "q");
        GemmGuard.Holds(kLength, kvLen, "k");
        GemmGuard.Holds(vLength, kvLen, "v");
        GemmGuard.Holds(oLength, qLen, "o");
    }

    /// <summary>Shared floats of one group: Q, O and V tiles (t×dh), K tile padded to dh+1, scores t×t, max/sum/alpha.</summary>
    private static int SharedFloats(int tile, int dh) => tile * dh * 3 + tile * (dh + 1) + tile * tile + 3 * tile;

    private static int TileFor(int dh)
    {
        int tile = 16;
        while (tile > 1 && SharedFloats(tile, dh) > SharedFloatBudget) tile >>= 1;
        return tile;
    }

    // ---------------------------------------------------------------- portable variant

    private static void PortableKernel(Index1D thread, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, AttnShape s)
    {
        int blocks = (s.Sq + PortableRows - 1) / PortableRows;
        int units = blocks * s.Hq;
        // Units are dealt round-robin so that, under a causal mask, every thread gets a mix of short (early) and
        // long (late) query blocks instead of one thread owning all the longest ones.
        for (int u = thread.X; u < units; u += s.Threads)
        {
            int block = u / s.Hq;
            int h = u - block * s.Hq;
            int i0 = block * PortableRows;
            if (i0 + PortableRows <= s.Sq) Rows4(q, k, v, o, s, i0, h);
            else
            {
                for (int i = i0; i < s.Sq; i++) Row1(q, k, v, o, s, i, h);
            }
        }
    }

    /// <summary>
    /// Query rows i0..i0+3 of head h. Each K/V element loaded serves four queries, and each output element is
    /// read and written once per 8 keys (with the running-max rescale folded into that write), which cuts the
    /// per-FMA view accesses (the CPU accelerator's dominant cost) about 2.5× against a one-row loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, in AttnShape s, int i0, int h)
    {
        int dh = s.Dh;
        int qs = s.Hq * dh, ks = s.Hkv * dh;
        int qa = (i0 * s.Hq + h) * dh;
        int kvBase = (h / s.HeadsPerKv) * dh;
        float sc = s.Scale;
        for (int d = 0; d < dh; d++)
        {
            o[qa + d] = 0f; o[qa + qs + d] = 0f; o[qa + 2 * qs + d] = 0f; o[qa + 3 * qs + d] = 0f;
        }
        float max0 = float.NegativeInfinity, max1 = float.NegativeInfinity, max2 = float.NegativeInfinity, max3 = float.NegativeInfinity;
        float sum0 = 0f, sum1 = 0f, sum2 = 0f, sum3 = 0f;
        bool causal = s.Causal != 0;
        // Causal: the block's last row sees keys 0..i0+3; key 0 is visible to every row, so each row's running
        // max is finite after the first key block and masked scores (-inf) contribute exp(-inf) = 0.
        int keyEnd = causal ? Math.Min(s.Sk, i0 + PortableRows) : s.Sk;
        int j = 0;
        for (; j + 8 <= keyEnd; j += 8)
        {
            int kb = j * ks + kvBase;
                float s00 = 0f, s01 = 0f, s02 = 0f, s03 = 0f, s04 = 0f, s05 = 0f, s06 = 0f, s07 = 0f;
                float s10 = 0f, s11 = 0f, s12 = 0f, s13 = 0f, s14 = 0f, s15 = 0f, s16 = 0f, s17 = 0f;
                float s20 = 0f, s21 = 0f, s22 = 0f, s23 = 0f, s24 = 0f, s25 = 0f, s26 = 0f, s27 = 0f;
                float s30 = 0f, s31 = 0f, s32 = 0f, s33 = 0f, s34 = 0f, s35 = 0f, s36 = 0f, s37 = 0f;
            for (int d = 0; d < dh; d++)
            {
                int qd = qa + d, kd = kb + d;
                    float q0 = q[qd], q1 = q[qd + 1 * qs], q2 = q[qd + 2 * qs], q3 = q[qd + 3 * qs];
                    float k0 = k[kd], k1 = k[kd + 1 * ks], k2 = k[kd + 2 * ks], k3 = k[kd + 3 * ks], k4 = k[kd + 4 * ks], k5 = k[kd + 5 * ks], k6 = k[kd + 6 * ks], k7 = k[kd + 7 * ks];
                    s00 += q0 * k0; s01 += q0 * k1; s02 += q0 * k2; s03 += q0 * k3; s04 += q0 * k4; s05 += q0 * k5; s06 += q0 * k6; s07 += q0 * k7;
                    s10 += q1 * k0; s11 += q1 * k1; s12 += q1 * k2; s13 += q1 * k3; s14 += q1 * k4; s15 += q1 * k5; s16 += q1 * k6; s17 += q1 * k7;
                    s20 += q2 * k0; s21 += q2 * k1; s22 += q2 * k2; s23 += q2 * k3; s24 += q2 * k4; s25 += q2 * k5; s26 += q2 * k6; s27 += q2 * k7;
                    s30 += q3 * k0; s31 += q3 * k1; s32 += q3 * k2; s33 += q3 * k3; s34 += q3 * k4; s35 += q3 * k5; s36 += q3 * k6; s37 += q3 * k7;
            }
            if (causal && j + 7 > i0)
            {
                    Mask8(j, i0 + 0, ref s01, ref s02, ref s03, ref s04, ref s05, ref s06, ref s07);
                    Mask8(j, i0 + 1, ref s11, ref s12, ref s13, ref s14, ref s15, ref s16, ref s17);
                    Mask8(j, i0 + 2, ref s21, ref s22, ref s23, ref s24, ref s25, ref s26, ref s27);
                    Mask8(j, i0 + 3, ref s31, ref s32, ref s33, ref s34, ref s35, ref s36, ref s37);
            }
                float a0 = Online8(sc, ref max0, ref sum0, ref s00, ref s01, ref s02, ref s03, ref s04, ref s05, ref s06, ref s07);
                float a1 = Online8(sc, ref max1, ref sum1, ref s10, ref s11, ref s12, ref s13, ref s14, ref s15, ref s16, ref s17);
                float a2 = Online8(sc, ref max2, ref sum2, ref s20, ref s21, ref s22, ref s23, ref s24, ref s25, ref s26, ref s27);
                float a3 = Online8(sc, ref max3, ref sum3, ref s30, ref s31, ref s32, ref s33, ref s34, ref s35, ref s36, ref s37);
            for (int d = 0; d < dh; d++)
            {
                int vd = kb + d, od = qa + d;
                    float v0 = v[vd], v1 = v[vd + 1 * ks], v2 = v[vd + 2 * ks], v3 = v[vd + 3 * ks], v4 = v[vd + 4 * ks], v5 = v[vd + 5 * ks], v6 = v[vd + 6 * ks], v7 = v[vd + 7 * ks];
                    o[od] = o[od] * a0 + (s00 * v0 + s01 * v1 + s02 * v2 + s03 * v3 + s04 * v4 + s05 * v5 + s06 * v6 + s07 * v7);
                    o[od + 1 * qs] = o[od + 1 * qs] * a1 + (s10 * v0 + s11 * v1 + s12 * v2 + s13 * v3 + s14 * v4 + s15 * v5 + s16 * v6 + s17 * v7);
                    o[od + 2 * qs] = o[od + 2 * qs] * a2 + (s20 * v0 + s21 * v1 + s22 * v2 + s23 * v3 + s24 * v4 + s25 * v5 + s26 * v6 + s27 * v7);
                    o[od + 3 * qs] = o[od + 3 * qs] * a3 + (s30 * v0 + s31 * v1 + s32 * v2 + s33 * v3 + s34 * v4 + s35 * v5 + s36 * v6 + s37 * v7);
            }
        }
        for (; j < keyEnd; j++)
        {
            int kb = j * ks + kvBase;
            float t0 = 0f, t1 = 0f, t2 = 0f, t3 = 0f;
            for (int d = 0; d < dh; d++)
            {
                int qd = qa + d;
                float kj = k[kb + d];
                t0 += q[qd] * kj; t1 += q[qd + qs] * kj; t2 += q[qd + 2 * qs] * kj; t3 += q[qd + 3 * qs] * kj;
            }
            // Tail keys past a row's causal limit get weight 0 and leave its max and sum unchanged.
            float a0 = Online1(causal && j > i0 ? float.NegativeInfinity : t0 * sc, ref max0, ref sum0, out float w0);
            float a1 = Online1(causal && j > i0 + 1 ? float.NegativeInfinity : t1 * sc, ref max1, ref sum1, out float w1);
            float a2 = Online1(causal && j > i0 + 2 ? float.NegativeInfinity : t2 * sc, ref max2, ref sum2, out float w2);
            float a3 = Online1(t3 * sc, ref max3, ref sum3, out float w3);
            for (int d = 0; d < dh; d++)
            {
                int od = qa + d;
                float vj = v[kb + d];
                o[od] = o[od] * a0 + w0 * vj;
                o[od + qs] = o[od + qs] * a1 + w1 * vj;
                o[od + 2 * qs] = o[od + 2 * qs] * a2 + w2 * vj;
                o[od + 3 * qs] = o[od + 3 * qs] * a3 + w3 * vj;
            }
        }
        float inv0 = 1f / sum0, inv1 = 1f / sum1, inv2 = 1f / sum2, inv3 = 1f / sum3;
        for (int d = 0; d < dh; d++)
        {
            int od = qa + d;
            o[od] *= inv0; o[od + qs] *= inv1; o[od + 2 * qs] *= inv2; o[od + 3 * qs] *= inv3;
        }
    }

    /// <summary>Sets the scores of keys j+1..j+7 that lie past <paramref name="limit"/> (the row's causal limit) to -inf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mask8(int j, int limit, ref float x1, ref float x2, ref float x3, ref float x4, ref float x5, ref float x6, ref float x7)
    {
        // Key j itself is never masked: a block is only visited when j ≤ i0 ≤ limit.
        if (j + 1 > limit) x1 = float.NegativeInfinity;
        if (j + 2 > limit) x2 = float.NegativeInfinity;
        if (j + 3 > limit) x3 = float.NegativeInfinity;
        if (j + 4 > limit) x4 = float.NegativeInfinity;
        if (j + 5 > limit) x5 = float.NegativeInfinity;
        if (j + 6 > limit) x6 = float.NegativeInfinity;
        if (j + 7 > limit) x7 = float.NegativeInfinity;
    }

    /// <summary>
    /// One online-softmax step over 8 raw dot products of a row: scales them, raises the running max, turns them
    /// into weights exp(score - max) in place, updates the running sum and returns the factor the row's
    /// accumulator must be multiplied by (1 unless the max grew).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Online8(float scale, ref float max, ref float sum, ref float x0, ref float x1, ref float x2, ref float x3, ref float x4, ref float x5, ref float x6, ref float x7)
    {
        x0 *= scale; x1 *= scale; x2 *= scale; x3 *= scale; x4 *= scale; x5 *= scale; x6 *= scale; x7 *= scale;
        float blockMax = Math.Max(Math.Max(Math.Max(x0, x1), Math.Max(x2, x3)), Math.Max(Math.Max(x4, x5), Math.Max(x6, x7)));
        float alpha = 1f;
        if (blockMax > max)
        {
            // exp(-inf) = 0 on a row's first block, which is harmless because its accumulator starts at zero.
            alpha = MathF.Exp(max - blockMax);
            max = blockMax;
        }
        x0 = MathF.Exp(x0 - max); x1 = MathF.Exp(x1 - max); x2 = MathF.Exp(x2 - max); x3 = MathF.Exp(x3 - max);
        x4 = MathF.Exp(x4 - max); x5 = MathF.Exp(x5 - max); x6 = MathF.Exp(x6 - max); x7 = MathF.Exp(x7 - max);
        sum = sum * alpha + (((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)));
        return alpha;
    }

    /// <summary>One online-softmax step for a single (already scaled, possibly masked) score; see <see cref="Online8"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Online1(float score, ref float max, ref float sum, out float weight)
    {
        float alpha = 1f;
        if (score > max)
        {
            alpha = MathF.Exp(max - score);
            max = score;
        }
        weight = MathF.Exp(score - max);
        sum = sum * alpha + weight;
        return alpha;
    }

    /// <summary>One query row (the remainder rows of Sq that do not fill a 4-row block), 8 keys at a time.</summary>
    private static void Row1(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, in AttnShape s, int i, int h)
    {
        int dh = s.Dh;
        int p = i * s.Hq + h;
        int kvHead = h / s.HeadsPerKv;
        int qo = p * dh;
        for (int d = 0; d < dh; d++) o[qo + d] = 0f;
        float max = float.NegativeInfinity, sum = 0f;
        int keys = s.Causal != 0 ? i + 1 : s.Sk;
        int ks = s.Hkv * dh;
        int j = 0;
        // Blocks of 8 keys: each q element is loaded once for 8 dot products, and each output element is
        // read and written once per 8 keys instead of once per key (stores in the inner loop stop the JIT
        // from keeping the views' base pointers in registers on the CPU accelerator).
        for (; j + 8 <= keys; j += 8)
        {
            int k0 = (j * s.Hkv + kvHead) * dh;
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, s4 = 0f, s5 = 0f, s6 = 0f, s7 = 0f;
            for (int d = 0; d < dh; d++)
            {
                float qd = q[qo + d];
                int kd = k0 + d;
                s0 += qd * k[kd]; s1 += qd * k[kd + ks]; s2 += qd * k[kd + 2 * ks]; s3 += qd * k[kd + 3 * ks];
                s4 += qd * k[kd + 4 * ks]; s5 += qd * k[kd + 5 * ks]; s6 += qd * k[kd + 6 * ks]; s7 += qd * k[kd + 7 * ks];
            }
            s0 *= s.Scale; s1 *= s.Scale; s2 *= s.Scale; s3 *= s.Scale;
            s4 *= s.Scale; s5 *= s.Scale; s6 *= s.Scale; s7 *= s.Scale;
            float blockMax = Math.Max(Math.Max(Math.Max(s0, s1), Math.Max(s2, s3)), Math.Max(Math.Max(s4, s5), Math.Max(s6, s7)));
            if (blockMax > max)
            {
                float alpha = MathF.Exp(max - blockMax);
                sum *= alpha;
                for (int d = 0; d < dh; d++) o[qo + d] *= alpha;
                max = blockMax;
            }
            float p0 = MathF.Exp(s0 - max), p1 = MathF.Exp(s1 - max), p2 = MathF.Exp(s2 - max), p3 = MathF.Exp(s3 - max);
            float p4 = MathF.Exp(s4 - max), p5 = MathF.Exp(s5 - max), p6 = MathF.Exp(s6 - max), p7 = MathF.Exp(s7 - max);
            sum += ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7));
            for (int d = 0; d < dh; d++)
            {
                int vd = k0 + d;
                o[qo + d] += p0 * v[vd] + p1 * v[vd + ks] + p2 * v[vd + 2 * ks] + p3 * v[vd + 3 * ks]
                    + p4 * v[vd + 4 * ks] + p5 * v[vd + 5 * ks] + p6 * v[vd + 6 * ks] + p7 * v[vd + 7 * ks];
            }
        }
        for (; j < keys; j++)
        {
            int ko = (j * s.Hkv + kvHead) * dh;
            float dot = 0f;
            for (int d = 0; d < dh; d++) dot += q[qo + d] * k[ko + d];
            float score = dot * s.Scale;
            if (score > max)
            {
                // Rescale only when the running max grows (rarely after the first keys).
                float alpha = MathF.Exp(max - score);
                sum *= alpha;
                for (int d = 0; d < dh; d++) o[qo + d] *= alpha;
                max = score;
            }
            float weight = MathF.Exp(score - max);
            sum += weight;
            for (int d = 0; d < dh; d++) o[qo + d] += weight * v[ko + d];
        }
        float inv = 1f / sum;
        for (int d = 0; d < dh; d++) o[qo + d] *= inv;
    }

    // ---------------------------------------------------------------- GPU variant

    private static void GpuKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, AttnShape s)
    {
        ArrayView<float> sh = SharedMemory.GetDynamic<float>();
        int t = s.Tile, dh = s.Dh;
        // K rows are padded to dh+1 so that the score loop (consecutive threads = consecutive keys) hits distinct banks.
        int kStride = dh + 1;
        int offQ = 0, offK = t * dh, offV = offK + t * kStride, offO = offV + t * dh;
        int offS = offO + t * dh, offM = offS + t * t, offL = offM + t, offA = offL + t;
        int tid = Group.IdxX, nt = Group.DimX;
        int q0 = Grid.IdxX * t, h = Grid.IdxY, kvHead = h / s.HeadsPerKv;
        int qRow = s.Hq * dh, kvRow = s.Hkv * dh;
        int tileElems = t * dh;

        for (int e = tid; e < tileElems; e += nt)
        {
            int r = e / dh, d = e - r * dh, i = q0 + r;
            // Pre-scaling Q once saves a multiply per score.
            sh[offQ + e] = i < s.Sq ? q[i * qRow + h * dh + d] * s.Scale : 0f;
            sh[offO + e] = 0f;
        }
        for (int r = tid; r < t; r += nt)
        {
            sh[offM + r] = float.NegativeInfinity;
            sh[offL + r] = 0f;
        }

        int keyEnd = s.Causal != 0 ? Math.Min(s.Sk, q0 + t) : s.Sk;
        for (int k0 = 0; k0 < keyEnd; k0 += t)
        {
            // Orders the previous step's reads of K/V/S (or the initial staging) before this tile overwrites them.
            Group.Barrier();
            for (int e = tid; e < tileElems; e += nt)
            {
                int c = e / dh, d = e - c * dh, j = k0 + c;
                int src = j * kvRow + kvHead * dh + d;
                bool inside = j < s.Sk;
                sh[offK + c * kStride + d] = inside ? k[src] : 0f;
                sh[offV + e] = inside ? v[src] : 0f;
            }
            Group.Barrier();

            for (int e = tid; e < t * t; e += nt)
            {
                int r = e / t, c = e - r * t, i = q0 + r, j = k0 + c;
                float score = float.NegativeInfinity;
                if (i < s.Sq && j < s.Sk && (s.Causal == 0 || j <= i))
                {
                    float dot = 0f;
                    int qa = offQ + r * dh, ka = offK + c * kStride;
                    for (int d = 0; d < dh; d++) dot += sh[qa + d] * sh[ka + d];
                    score = dot;
                }
                sh[offS + e] = score;
            }
            Group.Barrier();

            for (int r = tid; r < t; r += nt)
            {
                float oldMax = sh[offM + r], max = oldMax;
                for (int c = 0; c < t; c++) max = Math.Max(max, sh[offS + r * t + c]);
                float alpha = 1f, sum = 0f;
                if (max != float.NegativeInfinity)
                {
                    // exp(-inf) = 0 clears the (empty) accumulator on a row's first live tile.
                    alpha = MathF.Exp(oldMax - max);
                    for (int c = 0; c < t; c++)
                    {
                        float sc = sh[offS + r * t + c];
                        float pr = sc == float.NegativeInfinity ? 0f : MathF.Exp(sc - max);
                        sh[offS + r * t + c] = pr;
                        sum += pr;
                    }
                }
                else
                {
                    // Rows past Sq (or not yet reached by a causal mask) contribute nothing.
                    for (int c = 0; c < t; c++) sh[offS + r * t + c] = 0f;
                }
                sh[offL + r] = sh[offL + r] * alpha + sum;
                sh[offM + r] = max;
                sh[offA + r] = alpha;
            }
            Group.Barrier();

            for (int e = tid; e < tileElems; e += nt)
            {
                int r = e / dh, d = e - r * dh;
                float acc = sh[offO + e] * sh[offA + r];
                for (int c = 0; c < t; c++) acc += sh[offS + r * t + c] * sh[offV + c * dh + d];
                sh[offO + e] = acc;
            }
        }
        Group.Barrier();

        for (int e = tid; e < tileElems; e += nt)
        {
            int r = e / dh, d = e - r * dh, i = q0 + r;
            if (i < s.Sq) o[i * qRow + h * dh + d] = sh[offO + e] / sh[offL + r];
        }
    }
}
