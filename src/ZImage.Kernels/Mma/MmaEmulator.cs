using System.Runtime.CompilerServices;
using ILGPU;

namespace ZImage.Kernels.Mma;

/// <summary>
/// Which lane holds which A and B fragment elements of <c>mma.m16n8k16</c>. The register within the lane
/// (<c>a0..a3</c>, <c>b0..b1</c>) and the C/D layout are fixed by <see cref="IWarpMma"/>; this only names the lane,
/// so tests can substitute a permuted mapping and prove that the kernels' results depend on it.
/// </summary>
public interface IMmaLaneLayout
{
    /// <summary>The lane whose A registers hold row <paramref name="row"/> (0..7, and row+8) at k = 2·<paramref name="kPair"/> (and +8).</summary>
    int ALane(int row, int kPair);

    /// <summary>The lane whose B registers hold column <paramref name="col"/> (0..7) at k = 2·<paramref name="kPair"/> (and +8).</summary>
    int BLane(int col, int kPair);
}

/// <summary>The PTX ISA's documented mapping: A row r / B column n with k pair p live in lane 4·r + p / 4·n + p.</summary>
public readonly struct PtxIsaLaneLayout : IMmaLaneLayout
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ALane(int row, int kPair) => row * 4 + kPair;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int BLane(int col, int kPair) => col * 4 + kPair;
}

/// <summary>
/// An exact emulation of the warp-level tensor-core instructions for ILGPU's CPU accelerator (warp size 32): each
/// lane gathers the fragment elements it needs from the lanes the PTX ISA says hold them, with
/// <see cref="Warp.Shuffle{T}(T, int)"/>, so a kernel whose tile, fragment or index logic disagrees with the
/// documented layouts computes a wrong result on the CPU as it would on a GPU.
/// </summary>
/// <remarks>
/// Rounding: bf16×bf16 products are exact in fp32 (8+8 significand bits), and so in float64; the emulator adds the
/// 16 products and C in float64 and rounds once to fp32. Tensor cores add with at least fp32 precision in an
/// unspecified order, so GPU results differ from this by float32 accumulation noise (relative ~1e-7 per tile), well
/// inside the kernels' tolerances. The emulated <c>cp.async</c> copies at once; <c>commit</c>/<c>wait</c> are no-ops,
/// so a missing wait is not caught here (a missing barrier is not either: the CPU accelerator's threads run in lock
/// step only at barriers and shuffles).
/// </remarks>
public static class MmaEmulator
{
    /// <summary>Emulates <c>mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32</c> with the lane mapping <typeparamref name="TLayout"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Mma<TLayout>(ref float c0, ref float c1, ref float c2, ref float c3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
        where TLayout : struct, IMmaLaneLayout
    {
        TLayout layout = default;
        int lane = Warp.LaneIdx;
        int g = lane >> 2, t = lane & 3;
        double d0 = c0, d1 = c1, d2 = c2, d3 = c3;
        for (int p = 0; p < 4; p++)
        {
            int la = layout.ALane(g, p);
            uint rowLo = Warp.Shuffle(a0, la);      // A[g][2p..2p+1]
            uint rowHiLo = Warp.Shuffle(a1, la);    // A[g+8][2p..2p+1]
            uint rowLoHi = Warp.Shuffle(a2, la);    // A[g][2p+8..2p+9]
            uint rowHiHi = Warp.Shuffle(a3, la);    // A[g+8][2p+8..2p+9]
            int lb0 = layout.BLane(2 * t, p), lb1 = layout.BLane(2 * t + 1, p);
            uint col0Lo = Warp.Shuffle(b0, lb0);    // B[2p..2p+1][2t]
            uint col0Hi = Warp.Shuffle(b1, lb0);    // B[2p+8..2p+9][2t]
            uint col1Lo = Warp.Shuffle(b0, lb1);    // B[2p..][2t+1]
            uint col1Hi = Warp.Shuffle(b1, lb1);
            d0 += Dot2(rowLo, col0Lo) + Dot2(rowLoHi, col0Hi);
            d1 += Dot2(rowLo, col1Lo) + Dot2(rowLoHi, col1Hi);
            d2 += Dot2(rowHiLo, col0Lo) + Dot2(rowHiHi, col0Hi);
            d3 += Dot2(rowHiLo, col1Lo) + Dot2(rowHiHi, col1Hi);
        }
        c0 = (float)d0; c1 = (float)d1; c2 = (float)d2; c3 = (float)d3;
    }

    /// <summary>Emulates <c>ldmatrix.sync.aligned.m8n8.x4.shared.b16</c> (row addresses as element indices into <paramref name="shared"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LdMatrixX4(ArrayView<ushort> shared, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        int lane = Warp.LaneIdx;
        int row = lane >> 2, col = 2 * (lane & 3);
        int e0 = Warp.Shuffle(rowElement, row) + col;
        int e1 = Warp.Shuffle(rowElement, 8 + row) + col;
        int e2 = Warp.Shuffle(rowElement, 16 + row) + col;
        int e3 = Warp.Shuffle(rowElement, 24 + row) + col;
        r0 = Pack(shared[e0], shared[e0 + 1]);
        r1 = Pack(shared[e1], shared[e1 + 1]);
        r2 = Pack(shared[e2], shared[e2 + 1]);
        r3 = Pack(shared[e3], shared[e3 + 1]);
    }

    /// <summary>Emulates <c>ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LdMatrixX4Trans(ArrayView<ushort> shared, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        int lane = Warp.LaneIdx;
        int row = 2 * (lane & 3), col = lane >> 2;
        r0 = Pack(shared[Warp.Shuffle(rowElement, row) + col], shared[Warp.Shuffle(rowElement, row + 1) + col]);
        r1 = Pack(shared[Warp.Shuffle(rowElement, 8 + row) + col], shared[Warp.Shuffle(rowElement, 9 + row) + col]);
        r2 = Pack(shared[Warp.Shuffle(rowElement, 16 + row) + col], shared[Warp.Shuffle(rowElement, 17 + row) + col]);
        r3 = Pack(shared[Warp.Shuffle(rowElement, 24 + row) + col], shared[Warp.Shuffle(rowElement, 25 + row) + col]);
    }

    /// <summary>Emulates a 16-byte <c>cp.async</c> with zero fill past <paramref name="validElements"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CpAsync16(ArrayView<ushort> shared, int sharedElement, ArrayView<ushort> global, int globalElement, int validElements)
    {
        for (int i = 0; i < 8; i++)
            shared[sharedElement + i] = i < validElements ? global[globalElement + i] : (ushort)0;
    }

    /// <summary>Two bf16 values in one register, <paramref name="lo"/> in bits 0..15 (the lower k or column index).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Pack(ushort lo, ushort hi) => lo | ((uint)hi << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Dot2(uint a, uint b) =>
        (double)Bf16.ToFloat((ushort)a) * Bf16.ToFloat((ushort)b) + (double)Bf16.ToFloat((ushort)(a >> 16)) * Bf16.ToFloat((ushort)(b >> 16));
}
