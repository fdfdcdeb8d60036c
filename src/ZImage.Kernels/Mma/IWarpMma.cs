using ILGPU;

namespace ZImage.Kernels.Mma;

/// <summary>
/// Warp-level tensor-core operations used by the mma kernels (<see cref="MmaGemmKernels"/>, <see cref="MmaAttentionKernels"/>).
/// Every lane of a full 32-lane warp must call each method together (they are <c>.sync.aligned</c> in PTX and
/// shuffle-based in the emulator). Implemented by empty structs so that kernels specialise per implementation:
/// <see cref="TensorCoreMma"/> (inline PTX on CUDA, the exact <see cref="MmaEmulator"/> on ILGPU's CPU accelerator) is
/// what the kernels run; tests substitute deliberately wrong layouts to prove the emulator catches them.
/// </summary>
/// <remarks>
/// Fragments follow the PTX ISA (section "Matrix fragments for mma.m16n8k16" with .bf16): with
/// <c>g = lane &gt;&gt; 2</c> (groupID) and <c>t = lane % 4</c> (threadID_in_group), A (16×16, row-major) is 4 registers
/// of two bf16 each: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]; B (16×8, "col")
/// is 2 registers: b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]; C/D (16×8 f32) is 4 floats: c0,c1 = D[g][2t..2t+1],
/// c2,c3 = D[g+8][2t..2t+1]. The lower k index sits in the low 16 bits of a register.
/// Shared memory is addressed twice over: as an element index into the kernel's one shared <see cref="ushort"/> view
/// (what the emulator reads) and as a 32-bit shared-window byte address, <see cref="SharedBase"/> plus twice the
/// element index (what PTX reads).
/// </remarks>
public interface IWarpMma
{
    /// <summary>The shared-window byte address of the kernel's first static shared allocation (0 in the emulator).</summary>
    uint SharedBase();

    /// <summary>D = A·B + C for one m16n8k16 tile, bf16 inputs, f32 accumulation (<c>mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32</c>).</summary>
    void Mma(ref float c0, ref float c1, ref float c2, ref float c3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1);

    /// <summary>
    /// <c>ldmatrix.sync.aligned.m8n8.x4.shared.b16</c>: lanes 8i..8i+7 give the rows of matrix i (16 bytes each, at
    /// shared element <paramref name="rowElement"/>); lane l receives row l/4, elements 2(l%4) and 2(l%4)+1 of matrix i in rᵢ.
    /// </summary>
    void LdMatrixX4(ArrayView<ushort> shared, uint sharedBase, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3);

    /// <summary>The <c>.trans</c> form: lane l receives elements (2(l%4), l/4) and (2(l%4)+1, l/4) of matrix i in rᵢ.</summary>
    void LdMatrixX4Trans(ArrayView<ushort> shared, uint sharedBase, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3);

    /// <summary>
    /// <c>cp.async.cg.shared.global</c> of 16 bytes (8 bf16): copies <paramref name="validElements"/> (0..8) elements
    /// from global element <paramref name="globalElement"/> and zero-fills the rest. The global address
    /// (<paramref name="globalBase"/> + 2·element) must be 16-byte aligned when <paramref name="validElements"/> &gt; 0,
    /// and so must the shared one.
    /// </summary>
    void CpAsync16(ArrayView<ushort> shared, uint sharedBase, int sharedElement, ArrayView<ushort> global, ulong globalBase, int globalElement, int validElements);

    /// <summary><c>cp.async.commit_group</c>.</summary>
    void CommitGroup();

    /// <summary><c>cp.async.wait_group 1</c>: all but the newest committed group have landed (for this thread).</summary>
    void WaitGroupAllButOne();

    /// <summary><c>cp.async.wait_all</c>.</summary>
    void WaitAll();
}
