using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels;

/// <summary>Problem size and work split of one RoPE launch (up to two tensors of the same sequence).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RopeShape
{
    public int S, HeadsA, HeadsB, Dh;
    /// <summary>1: Qwen3 rotate-half with [S,Dh] tables; 0: DiT interleaved pairs with [S,Dh/2] tables.</summary>
    public int RotateHalf;
    /// <summary>Number of launched threads.</summary>
    public int Threads;
    /// <summary>1: one (row, pair) per thread in a grid-stride loop (coalesced on a GPU); 0: contiguous row chunks.</summary>
    public int PairPerThread;
}

/// <summary>
/// Rotary position embeddings applied in place to token-major tensors <c>x[S,H,Dh]</c>, in float32, with per-token
/// tables. Two conventions:
/// <list type="bullet">
/// <item>Interleaved pairs (Z-Image DiT, §3.4): tables cos/sin[S, Dh/2];
/// x'[2j] = x[2j]·c − x[2j+1]·s, x'[2j+1] = x[2j]·s + x[2j+1]·c.</item>
/// <item>Rotate-half (Qwen3, §5.2): tables cos/sin[S, Dh] (emb = concat(ang, ang));
/// x' = x·cos + rotate_half(x)·sin with rotate_half(x) = concat(−x[Dh/2:], x[:Dh/2]).</item>
/// </list>
/// One launch rotates q and k together. The op is memory-bound and cheap, so a single kernel serves both
/// accelerators: coarse contiguous row chunks for the portable variant, one pair per thread for the GPU variant.
/// </summary>
public sealed class RopeKernels
{
    private readonly KernelContext _ctx;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RopeShape> _kernel;

    /// <summary>Compiles the kernel.</summary>
    /// <param name="context">Accelerator and variant.</param>
    public RopeKernels(KernelContext context)
    {
        _ctx = context ?? throw new ArgumentNullException(nameof(context));
        _kernel = context.Accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RopeShape>(Kernel);
    }

    /// <summary>The context the kernel was compiled for.</summary>
    public KernelContext Context => _ctx;

    /// <summary>Interleaved-pair RoPE on one tensor x[S,H,Dh] in place.</summary>
    /// <param name="x">The tensor to rotate.</param>
    /// <param name="cos">Cosines [S, Dh/2].</param>
    /// <param name="sin">Sines [S, Dh/2].</param>
    /// <param name="seqLen">Tokens S (≥ 1).</param>
    /// <param name="heads">Heads H (≥ 1).</param>
    /// <param name="headDim">Channels per head (even, ≥ 2).</param>
    public void ApplyInterleaved(ArrayView<float> x, ArrayView<float> cos, ArrayView<float> sin, int seqLen, int heads, int headDim) =>
        Launch(x, x, cos, sin, seqLen, heads, 0, headDim, rotateHalf: false);

    /// <summary>Interleaved-pair RoPE on q[S,Hq,Dh] and k[S,Hk,Dh] in place, in one launch.</summary>
    /// <param name="q">Queries.</param>
    /// <param name="k">Keys (same tokens as q).</param>
    /// <param name="cos">Cosines [S, Dh/2].</param>
    /// <param name="sin">Sines [S, Dh/2].</param>
    /// <param name="seqLen">Tokens S (≥ 1).</param>
    /// <param name="qHeads">Query heads (≥ 1).</param>
    /// <param name="kHeads">Key heads (≥ 1).</param>
    /// <param name="headDim">Channels per head (even, ≥ 2).</param>
    public void ApplyInterleaved(ArrayView<float> q, ArrayView<float> k, ArrayView<float> cos, ArrayView<float> sin, int seqLen, int qHeads, int kHeads, int headDim)
    {
        GemmGuard.InRange(kHeads, 1, int.MaxValue);
        Launch(q, k, cos, sin, seqLen, qHeads, kHeads, headDim, rotateHalf: false);
    }

    /// <summary>Rotate-half RoPE on one tensor x[S,H,Dh] in place.</summary>
    /// <param name="x">The tensor to rotate.</param>
    /// <param name="cos">Cosines [S, Dh].</param>
    /// <param name="sin">Sines [S, Dh].</param>
    /// <param name="seqLen">Tokens S (≥ 1).</param>
    /// <param name="heads">Heads H (≥ 1).</param>
    /// <param name="headDim">Channels per head (even, ≥ 2).</param>
    public void ApplyRotateHalf(ArrayView<float> x, ArrayView<float> cos, ArrayView<float> sin, int seqLen, int heads, int headDim) =>
        Launch(x, x, cos, sin, seqLen, heads, 0, headDim, rotateHalf: true);

    /// <summary>Rotate-half RoPE on q[S,Hq,Dh] and k[S,Hk,Dh] in place, in one launch.</summary>
    /// <param name="q">Queries.</param>
    /// <param name="k">Keys (same tokens as q).</param>
    /// <param name="cos">Cosines [S, Dh].</param>
    /// <param name="sin">Sines [S, Dh].</param>
    /// <param name="seqLen">Tokens S (≥ 1).</param>
    /// <param name="qHeads">Query heads (≥ 1).</param>
    /// <param name="kHeads">Key heads (≥ 1).</param>
    /// <param name="headDim">Channels per head (even, ≥ 2).</param>
    public void ApplyRotateHalf(ArrayView<float> q, ArrayView<float> k, ArrayView<float> cos, ArrayView<float> sin, int seqLen, int qHeads, int kHeads, int headDim)
    {
        GemmGuard.InRange(kHeads, 1, int.MaxValue);
        Launch(q, k, cos, sin, seqLen, qHeads, kHeads, headDim, rotateHalf: true);
    }

    private void Launch(ArrayView<float> a, ArrayView<float> b, ArrayView<float> cos, ArrayView<float> sin, int seqLen, int headsA, int headsB, int headDim, bool rotateHalf)
    {
        GemmGuard.InRange(seqLen, 1, int.MaxValue);
        GemmGuard.InRange(headsA, 1, int.MaxValue, headsB == 0 ? "heads" : "qHeads");
        GemmGuard.InRange(headDim, 2, int.MaxValue);
        if ((headDim & 1) != 0)
            GemmGuard.ThrowArgument(nameof(headDim), $"headDim = {headDim} must be even (RoPE rotates channel pairs).");
        long aLen = (long)seqLen * headsA * headDim, bLen = (long)seqLen * headsB * headDim;
        long table = (long)seqLen * (rotateHalf ? headDim : headDim / 2);
        GemmGuard.FitsInt32(aLen, headsB == 0 ? "x" : "q");
        GemmGuard.FitsInt32(bLen, "k");
        GemmGuard.FitsInt32((long)seqLen * (headsA + headsB) * (headDim / 2), "x");
        GemmGuard.Holds(a.Length, aLen, headsB == 0 ? "x" : "q");
        if (headsB > 0) GemmGuard.Holds(b.Length, bLen, "k");
        GemmGuard.Holds(cos.Length, table, nameof(cos));
        GemmGuard.Holds(sin.Length, table, nameof(sin));

        var s = new RopeShape { S = seqLen, HeadsA = headsA, HeadsB = headsB, Dh = headDim, RotateHalf = rotateHalf ? 1 : 0 };
        long rows = (long)seqLen * (headsA + headsB);
        if (_ctx.Variant == KernelVariant.Gpu)
        {
            long pairs = rows * (headDim / 2);
            long cap = (long)_ctx.Accelerator.NumMultiprocessors * _ctx.Accelerator.MaxNumThreadsPerMultiprocessor;
            s.PairPerThread = 1;
            s.Threads = (int)Math.Max(1, Math.Min(pairs, cap));
        }
        else
        {
            s.Threads = (int)Math.Min(_ctx.PortableChunks, rows);
        }
        _kernel(_ctx.Stream, s.Threads, a, b, cos, sin, s);
    }

    private static void Kernel(Index1D thread, ArrayView<float> a, ArrayView<float> b, ArrayView<float> cos, ArrayView<float> sin, RopeShape s)
    {
        int half = s.Dh / 2, heads = s.HeadsA + s.HeadsB;
        int rows = s.S * heads;
        if (s.PairPerThread != 0)
        {
            int pairs = rows * half;
            for (int e = thread.X; e < pairs; e += s.Threads)
            {
                int row = e / half;
                RotatePair(a, b, cos, sin, s, row, heads, e - row * half);
            }
        }
        else
        {
            int begin = (int)((long)thread.X * rows / s.Threads);
            int end = (int)((long)(thread.X + 1) * rows / s.Threads);
            for (int row = begin; row < end; row++)
            {
                for (int j = 0; j < half; j++) RotatePair(a, b, cos, sin, s, row, heads, j);
            }
        }
    }

    private static void RotatePair(ArrayView<float> a, ArrayView<float> b, ArrayView<float> cos, ArrayView<float> sin, in RopeShape s, int row, int heads, int j)
    {
        int token = row / heads, slot = row - token * heads;
        bool inA = slot < s.HeadsA;
        ArrayView<float> x = inA ? a : b;
        int baseIndex = inA ? (token * s.HeadsA + slot) * s.Dh : (token * s.HeadsB + slot - s.HeadsA) * s.Dh;
        int half = s.Dh / 2;
        if (s.RotateHalf != 0)
        {
            int t = token * s.Dh + j;
            float lo = x[baseIndex + j], hi = x[baseIndex + j + half];
            x[baseIndex + j] = lo * cos[t] - hi * sin[t];
            x[baseIndex + j + half] = hi * cos[t + half] + lo * sin[t + half];
        }
        else
        {
            int t = token * half + j;
            float c = cos[t], sn = sin[t];
            float x0 = x[baseIndex + 2 * j], x1 = x[baseIndex + 2 * j + 1];
            x[baseIndex + 2 * j] = x0 * c - x1 * sn;
            x[baseIndex + 2 * j + 1] = x0 * sn + x1 * c;
        }
    }
}
