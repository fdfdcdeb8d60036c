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
        GemmGuard.FitsInt32(qLen, nameof(q));
        GemmGuard.FitsInt32(kvLen, nameof(k));
        GemmGuard.Holds(q.Length, qLen, nameof(q));
        GemmGuard.Holds(k.Length, kvLen, nameof(k));
        GemmGuard.Holds(v.Length, kvLen, nameof(v));
        GemmGuard.Holds(o.Length, qLen, nameof(o));

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
            long pairs = (long)sq * hq;
            s.Threads = (int)Math.Min(_ctx.PortableChunks, pairs);
            _portable(_ctx.Stream, s.Threads, q, k, v, o, s);
        }
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
        long pairs = (long)s.Sq * s.Hq;
        int begin = (int)(thread.X * pairs / s.Threads);
        int end = (int)((thread.X + 1) * pairs / s.Threads);
        int dh = s.Dh;
        for (int p = begin; p < end; p++)
        {
            int i = p / s.Hq;
            int h = p - i * s.Hq;
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
