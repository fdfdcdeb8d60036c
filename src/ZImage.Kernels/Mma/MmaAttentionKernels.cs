using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels.Mma;

/// <summary>Problem size, tiling and addresses of one mma attention launch.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MmaAttnShape
{
    public int Sq, Sk, Hq, Hkv, Dh, HeadsPerKv;
    public float Scale;
    public int Causal;
    /// <summary>Keys at or past this index are masked (the caption padding mask); ≤ Sk.</summary>
    public int ValidKeys;
    public int Warps, ChunksLog2;
    public int AsyncQ, AsyncK, AsyncV;
    public ulong QAddress, KAddress, VAddress;
}

/// <summary>A warp's output accumulator for one head dim (generated: every fragment a named register).</summary>
internal interface IMmaAttentionOutput
{
    /// <summary>The head dim this accumulator holds.</summary>
    int HeadDim { get; }

    /// <summary>Multiplies row g by <paramref name="lo"/> and row g+8 by <paramref name="hi"/> (the online-softmax rescale).</summary>
    void Scale(float lo, float hi);

    /// <summary>O += P·V for keys 16·kk..16·kk+15 of the staged V tile; p0..p3 is P's A fragment.</summary>
    void PvStep<TMma>(TMma mma, ArrayView<ushort> sh, uint sb, int vBase, int kk, int lane, int chunksLog2, uint p0, uint p1, uint p2, uint p3)
        where TMma : struct, IWarpMma;

    /// <summary>Stores rows rowLo and rowLo+8 (when below Sq), scaled by 1/l.</summary>
    void Store(ArrayView<float> o, in MmaAttnShape s, int rowLo, int head, int lane, float invLo, float invHi);
}

/// <summary>
/// Flash-attention forward on the tensor cores (FA2 style): <c>o = softmax(q·kᵀ·scale + mask)·v</c> with the layouts
/// of <see cref="AttentionKernels"/> (<c>q[Sq,Hq,Dh]</c>, <c>k/v[Sk,Hkv,Dh]</c>, <c>o[Sq,Hq,Dh]</c> fp32), grouped-query
/// heads, an optional causal mask and a key-padding mask (keys ≥ <c>validKeys</c> are ignored: the caption padding of a
/// batch-1 text encoder). Head dims 16, 32 and 128.
/// <para>
/// Each warp owns 16 query rows (4 warps per block on CUDA, 1 on the CPU emulator); the block stages its Q tile once
/// and streams 32-key K/V tiles through a 2-stage <c>cp.async</c> ring (fp32 inputs are rounded to bf16 as staged). Per
/// tile the warp computes S = Q·Kᵀ with <c>ldmatrix</c> + <c>mma.m16n8k16</c>, masks and scales it, updates the running
/// row max and sum in registers (each row's four lanes reduce with <c>shfl.xor</c>), rescales the output accumulator,
/// and reuses S's accumulator fragments directly as P's A fragments (rounded to bf16) for O += P·V, whose B fragments
/// come from <c>ldmatrix.trans</c> of the V tile. No S×S buffer exists anywhere.
/// </para>
/// Needs a GPU-variant context with 32-lane warps (<see cref="IsAvailable"/>), like <see cref="MmaGemmKernels"/>.
/// </summary>
public sealed class MmaAttentionKernels
{
    internal const int KeyTile = 32, MaxHeadDim = 128, MaxWarps = 4;
    internal const int SharedElements = MaxWarps * 16 * MaxHeadDim + 2 * 2 * KeyTile * MaxHeadDim;

    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaAttnShape>?[] _f32 = new Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaAttnShape>?[3];
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MmaAttnShape>?[] _bf16 = new Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MmaAttnShape>?[3];

    /// <summary>Compiles the kernels (head dims 16, 32, 128; fp32 and bf16 inputs) when <paramref name="context"/> is a GPU-variant context with 32-lane warps.</summary>
    /// <param name="context">Accelerator and variant.</param>
    public MmaAttentionKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        Accelerator acc = context.Accelerator;
        IsAvailable = context.Variant == KernelVariant.Gpu && acc.WarpSize == 32 && acc.MaxNumThreadsPerGroup >= 32;
        Warps = acc.AcceleratorType == AcceleratorType.CPU ? 1 : MaxWarps;
        if (!IsAvailable) return;
        _f32[0] = acc.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaAttnShape>(AttentionKernel<float, F32Activation, MmaOutput16x16, TensorCoreMma>);
        _f32[1] = acc.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaAttnShape>(AttentionKernel<float, F32Activation, MmaOutput16x32, TensorCoreMma>);
        _f32[2] = acc.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaAttnShape>(AttentionKernel<float, F32Activation, MmaOutput16x128, TensorCoreMma>);
        _bf16[0] = acc.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MmaAttnShape>(AttentionKernel<ushort, Bf16Activation, MmaOutput16x16, TensorCoreMma>);
        _bf16[1] = acc.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MmaAttnShape>(AttentionKernel<ushort, Bf16Activation, MmaOutput16x32, TensorCoreMma>);
        _bf16[2] = acc.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MmaAttnShape>(AttentionKernel<ushort, Bf16Activation, MmaOutput16x128, TensorCoreMma>);
    }

    /// <summary>Whether the kernels were compiled (GPU variant, 32-lane warps).</summary>
    public bool IsAvailable { get; }

    /// <summary>Warps per block (16 query rows each): 4 on a GPU, 1 on the CPU emulator.</summary>
    public int Warps { get; set; }

    /// <summary>Whether <paramref name="headDim"/> has a tensor-core kernel (16, 32 or 128).</summary>
    public static bool SupportsHeadDim(int headDim) => headDim is 16 or 32 or 128;

    /// <summary>Attention for one sequence with fp32 inputs (rounded to bf16 as staged).</summary>
    /// <param name="q">Queries [Sq,Hq,Dh].</param>
    /// <param name="k">Keys [Sk,Hkv,Dh].</param>
    /// <param name="v">Values [Sk,Hkv,Dh].</param>
    /// <param name="o">Output [Sq,Hq,Dh]; fully overwritten.</param>
    /// <param name="sq">Query tokens (≥ 1).</param>
    /// <param name="sk">Key tokens (≥ 1; equal to <paramref name="sq"/> when causal).</param>
    /// <param name="hq">Query heads (a positive multiple of <paramref name="hkv"/>).</param>
    /// <param name="hkv">Key/value heads (≥ 1).</param>
    /// <param name="headDim">16, 32 or 128.</param>
    /// <param name="scale">Score scale (finite).</param>
    /// <param name="causal">Mask keys after the query.</param>
    /// <param name="validKeys">Keys at or past this index are masked (1..sk); -1 for none.</param>
    public void Forward(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        int sq, int sk, int hq, int hkv, int headDim, float scale, bool causal, int validKeys = -1)
    {
        var s = Prepare(q.Length, k.Length, v.Length, o.Length, sq, sk, hq, hkv, headDim, scale, causal, validKeys, 0, 0, 0);
        _f32[Slot(headDim)]!(_ctx.Stream, Config(s), q, k, v, o, s);
    }

    /// <summary>Attention for one sequence with bf16 inputs (staged with cp.async); see the fp32 overload.</summary>
    public void Forward(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> o,
        int sq, int sk, int hq, int hkv, int headDim, float scale, bool causal, int validKeys = -1)
    {
        var s = Prepare(q.Length, k.Length, v.Length, o.Length, sq, sk, hq, hkv, headDim, scale, causal, validKeys,
            MmaGemmKernels.Address(q), MmaGemmKernels.Address(k), MmaGemmKernels.Address(v));
        _bf16[Slot(headDim)]!(_ctx.Stream, Config(s), q, k, v, o, s);
    }

    private static int Slot(int headDim) => headDim == 16 ? 0 : headDim == 32 ? 1 : 2;

    private static KernelConfig Config(in MmaAttnShape s) =>
        new(new Index2D((s.Sq + 16 * s.Warps - 1) / (16 * s.Warps), s.Hq), new Index2D(32 * s.Warps, 1));

    private MmaAttnShape Prepare(long qLen, long kLen, long vLen, long oLen, int sq, int sk, int hq, int hkv, int headDim, float scale,
        bool causal, int validKeys, ulong qa, ulong ka, ulong va)
    {
        if (!IsAvailable)
            throw new InvalidOperationException($"The mma attention needs a GPU-variant context with 32-lane warps; this one is {_ctx.Variant} on {_ctx.Accelerator.AcceleratorType} (warp {_ctx.Accelerator.WarpSize}).");
        AttentionKernels.Validate(qLen, kLen, vLen, oLen, sq, sk, hq, hkv, headDim, scale, causal);
        GemmGuard.InRange(Warps, 1, MaxWarps, nameof(Warps));
        if (!SupportsHeadDim(headDim))
            GemmGuard.ThrowArgument(nameof(headDim), $"headDim = {headDim} has no tensor-core kernel; allowed: 16, 32, 128.");
        if (validKeys != -1) GemmGuard.InRange(validKeys, 1, sk);
        // cp.async needs 16-byte aligned rows: Dh is a multiple of 8 and the view bases must be aligned.
        return new MmaAttnShape
        {
            Sq = sq, Sk = sk, Hq = hq, Hkv = hkv, Dh = headDim, HeadsPerKv = hq / hkv, Scale = scale, Causal = causal ? 1 : 0,
            ValidKeys = validKeys == -1 ? sk : validKeys, Warps = Warps, ChunksLog2 = headDim == 16 ? 1 : headDim == 32 ? 2 : 4,
            AsyncQ = qa != 0 && qa % 16 == 0 ? 1 : 0, AsyncK = ka != 0 && ka % 16 == 0 ? 1 : 0, AsyncV = va != 0 && va % 16 == 0 ? 1 : 0,
            QAddress = qa, KAddress = ka, VAddress = va,
        };
    }

    /// <summary>
    /// Element offset of 16-byte chunk <paramref name="chunk"/> of <paramref name="row"/> in a tile of rows of
    /// 2^<paramref name="chunksLog2"/> chunks, XOR-swizzled so that the 8 rows an <c>ldmatrix</c> reads at one chunk
    /// index land in 8 distinct 16-byte bank groups.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Swizzle(int row, int chunk, int chunksLog2)
    {
        int rowsPerLineLog2 = chunksLog2 >= 3 ? 0 : 3 - chunksLog2;
        int mask = chunksLog2 >= 3 ? 7 : (1 << chunksLog2) - 1;
        return (row << (chunksLog2 + 3)) + ((chunk ^ ((row >> rowsPerLineLog2) & mask)) << 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StorePair(ArrayView<float> o, in MmaAttnShape s, int row, int head, int col, float v0, float v1)
    {
        if (row >= s.Sq) return;
        int i = (row * s.Hq + head) * s.Dh + col;
        o[i] = v0;
        o[i + 1] = v1;
    }

    internal static void AttentionKernel<TA, TAStage, TAcc, TMma>(ArrayView<TA> q, ArrayView<TA> k, ArrayView<TA> v, ArrayView<float> o, MmaAttnShape s)
        where TA : unmanaged
        where TAStage : struct, IMmaActivation<TA>
        where TAcc : struct, IMmaAttentionOutput
        where TMma : struct, IWarpMma
    {
        ArrayView<ushort> sh = SharedMemory.Allocate<ushort>(SharedElements);
        TMma mma = default;
        TAStage stager = default;
        uint sb = mma.SharedBase();
        int tid = Group.IdxX, threads = Group.DimX;
        int lane = tid & 31, warp = tid >> 5;
        int dh = s.Dh, log2 = s.ChunksLog2, chunkMask = (1 << log2) - 1;
        int bq = 16 * s.Warps;
        int q0 = Grid.IdxX * bq, h = Grid.IdxY, kvh = h / s.HeadsPerKv;
        int qStride = s.Hq * dh, kvStride = s.Hkv * dh;
        int qRegion = bq * dh, tileElems = KeyTile * dh;

        for (int c = tid; c < bq << log2; c += threads)
        {
            int row = c >> log2, ch = c & chunkMask, qi = q0 + row;
            int valid = qi < s.Sq ? 8 : 0;
            stager.Stage(mma, sh, sb, Swizzle(row, ch, log2), q, s.AsyncQ, s.QAddress, valid > 0 ? qi * qStride + h * dh + ch * 8 : 0, valid);
        }
        int keyEnd = s.ValidKeys;
        if (s.Causal != 0) keyEnd = Math.Min(keyEnd, q0 + bq);
        int tiles = (keyEnd + KeyTile - 1) / KeyTile;
        if (tiles > 0) LoadKv<TA, TAStage, TMma>(mma, sh, sb, k, v, s, qRegion, 0, kvh, kvStride, tid, threads);
        mma.CommitGroup();

        var acc = default(TAcc);
        float mLo = float.NegativeInfinity, mHi = float.NegativeInfinity, lLo = 0f, lHi = 0f;
        int rowLo = q0 + warp * 16 + (lane >> 2), rowHi = rowLo + 8;
        int qBase = warp * 16 * dh;
        for (int kt = 0; kt < tiles; kt++)
        {
            if (kt + 1 < tiles)
                LoadKv<TA, TAStage, TMma>(mma, sh, sb, k, v, s, qRegion + ((kt + 1) & 1) * 2 * tileElems, (kt + 1) * KeyTile, kvh, kvStride, tid, threads);
            mma.CommitGroup();
            mma.WaitGroupAllButOne();
            Group.Barrier();

            int kBase = qRegion + (kt & 1) * 2 * tileElems, vBase = kBase + tileElems;
            var sc = default(MmaScores16x32);
            for (int ks = 0; ks < dh >> 4; ks++)
                sc.QkStep(mma, sh, sb, qBase, kBase, ks, lane, log2);

            int key = kt * KeyTile + 2 * (lane & 3);
            Mask(ref sc.s00, ref sc.s01, ref sc.s02, ref sc.s03, key, rowLo, keyEnd, s);
            Mask(ref sc.s10, ref sc.s11, ref sc.s12, ref sc.s13, key + 8, rowLo, keyEnd, s);
            Mask(ref sc.s20, ref sc.s21, ref sc.s22, ref sc.s23, key + 16, rowLo, keyEnd, s);
            Mask(ref sc.s30, ref sc.s31, ref sc.s32, ref sc.s33, key + 24, rowLo, keyEnd, s);

            float maxLo = Math.Max(Math.Max(Math.Max(sc.s00, sc.s01), Math.Max(sc.s10, sc.s11)), Math.Max(Math.Max(sc.s20, sc.s21), Math.Max(sc.s30, sc.s31)));
            float maxHi = Math.Max(Math.Max(Math.Max(sc.s02, sc.s03), Math.Max(sc.s12, sc.s13)), Math.Max(Math.Max(sc.s22, sc.s23), Math.Max(sc.s32, sc.s33)));
            maxLo = Math.Max(maxLo, Warp.ShuffleXor(maxLo, 1));
            maxLo = Math.Max(maxLo, Warp.ShuffleXor(maxLo, 2));
            maxHi = Math.Max(maxHi, Warp.ShuffleXor(maxHi, 1));
            maxHi = Math.Max(maxHi, Warp.ShuffleXor(maxHi, 2));
            float newLo = Math.Max(mLo, maxLo), newHi = Math.Max(mHi, maxHi);
            // A row with no live key yet keeps max -inf: its weights are exp(-inf) = 0 and nothing is rescaled.
            float refLo = newLo == float.NegativeInfinity ? 0f : newLo, refHi = newHi == float.NegativeInfinity ? 0f : newHi;
            float alphaLo = MathF.Exp(mLo - refLo), alphaHi = MathF.Exp(mHi - refHi);
            mLo = newLo; mHi = newHi;

            float p00 = MathF.Exp(sc.s00 - refLo), p01 = MathF.Exp(sc.s01 - refLo), p02 = MathF.Exp(sc.s02 - refHi), p03 = MathF.Exp(sc.s03 - refHi);
            float p10 = MathF.Exp(sc.s10 - refLo), p11 = MathF.Exp(sc.s11 - refLo), p12 = MathF.Exp(sc.s12 - refHi), p13 = MathF.Exp(sc.s13 - refHi);
            float p20 = MathF.Exp(sc.s20 - refLo), p21 = MathF.Exp(sc.s21 - refLo), p22 = MathF.Exp(sc.s22 - refHi), p23 = MathF.Exp(sc.s23 - refHi);
            float p30 = MathF.Exp(sc.s30 - refLo), p31 = MathF.Exp(sc.s31 - refLo), p32 = MathF.Exp(sc.s32 - refHi), p33 = MathF.Exp(sc.s33 - refHi);
            // Per-lane partial row sums (the four lanes of a row are added once, at the end).
            lLo = lLo * alphaLo + ((p00 + p01) + (p10 + p11)) + ((p20 + p21) + (p30 + p31));
            lHi = lHi * alphaHi + ((p02 + p03) + (p12 + p13)) + ((p22 + p23) + (p32 + p33));
            acc.Scale(alphaLo, alphaHi);

            // S's C fragments of n-tiles 2kk and 2kk+1 are exactly P's A fragment for keys 16kk..16kk+15.
            acc.PvStep(mma, sh, sb, vBase, 0, lane, log2, PackBf16(p00, p01), PackBf16(p02, p03), PackBf16(p10, p11), PackBf16(p12, p13));
            acc.PvStep(mma, sh, sb, vBase, 1, lane, log2, PackBf16(p20, p21), PackBf16(p22, p23), PackBf16(p30, p31), PackBf16(p32, p33));
            Group.Barrier();   // everyone is done with this stage before the next iteration refills it
        }
        mma.WaitAll();

        lLo += Warp.ShuffleXor(lLo, 1);
        lLo += Warp.ShuffleXor(lLo, 2);
        lHi += Warp.ShuffleXor(lHi, 1);
        lHi += Warp.ShuffleXor(lHi, 2);
        acc.Store(o, s, rowLo, h, lane, lLo > 0f ? 1f / lLo : 0f, lHi > 0f ? 1f / lHi : 0f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadKv<TA, TAStage, TMma>(TMma mma, ArrayView<ushort> sh, uint sb, ArrayView<TA> k, ArrayView<TA> v, in MmaAttnShape s,
        int kBase, int key0, int kvh, int kvStride, int tid, int threads)
        where TA : unmanaged
        where TAStage : struct, IMmaActivation<TA>
        where TMma : struct, IWarpMma
    {
        TAStage stager = default;
        int log2 = s.ChunksLog2, chunkMask = (1 << log2) - 1, vBase = kBase + KeyTile * s.Dh;
        for (int c = tid; c < KeyTile << log2; c += threads)
        {
            int row = c >> log2, ch = c & chunkMask, key = key0 + row;
            // Rows past Sk are zero-filled: masked scores give them weight 0, and 0·0 stays 0 (no stale NaN).
            int valid = key < s.Sk ? 8 : 0;
            int src = valid > 0 ? key * kvStride + kvh * s.Dh + ch * 8 : 0;
            int dst = Swizzle(row, ch, log2);
            stager.Stage(mma, sh, sb, kBase + dst, k, s.AsyncK, s.KAddress, src, valid);
            stager.Stage(mma, sh, sb, vBase + dst, v, s.AsyncV, s.VAddress, src, valid);
        }
    }

    /// <summary>Scales four scores of key columns key, key+1 (rows g: x0, x1; g+8: x2, x3) and masks padding/causal ones to -inf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mask(ref float x0, ref float x1, ref float x2, ref float x3, int key, int rowLo, int keyEnd, in MmaAttnShape s)
    {
        bool causal = s.Causal != 0;
        x0 = key < keyEnd && (!causal || key <= rowLo) ? x0 * s.Scale : float.NegativeInfinity;
        x1 = key + 1 < keyEnd && (!causal || key + 1 <= rowLo) ? x1 * s.Scale : float.NegativeInfinity;
        x2 = key < keyEnd && (!causal || key <= rowLo + 8) ? x2 * s.Scale : float.NegativeInfinity;
        x3 = key + 1 < keyEnd && (!causal || key + 1 <= rowLo + 8) ? x3 * s.Scale : float.NegativeInfinity;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint PackBf16(float lo, float hi) => MmaEmulator.Pack(Bf16.FromFloat(lo), Bf16.FromFloat(hi));
}
