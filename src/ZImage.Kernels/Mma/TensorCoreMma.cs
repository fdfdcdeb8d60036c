using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace ZImage.Kernels.Mma;

/// <summary>
/// The <see cref="IWarpMma"/> the mma kernels run: inline PTX (<see cref="CudaAsm"/>) on CUDA, the exact
/// <see cref="MmaEmulator"/> with the documented lane layout everywhere else. <see cref="CudaAsm.IsSupported"/> is
/// a constant per backend: the PTX backend writes it as <c>setp.ne.s32 %p, 1, 1</c> (folded by ptxas, so the
/// emulator branch is dead code on the GPU) and the CPU accelerator evaluates it to false.
/// </summary>
/// <remarks>
/// Every inline-asm operand is 32 bits, so ILGPU stages each through a 4-byte <c>.local</c> slot that
/// <c>zimage kernels --ptx</c> reports as <c>asm_slot_bytes</c>; 64-bit global addresses travel as two halves packed
/// with <c>mov.b64</c>. Shared memory is addressed through ILGPU's symbol for the kernel's first (and, in the mma
/// kernels, only) static shared allocation, <c>__shared_alloca0</c>, as a 32-bit shared-window address.
/// </remarks>
public readonly struct TensorCoreMma : IWarpMma
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint SharedBase()
    {
        if (!CudaAsm.IsSupported) return 0;
        Ref<uint> address = 0u;
        CudaAsm.EmitRef("mov.u32 %0, __shared_alloca0;", ref address);
        return address.Value;
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Mma(ref float c0, ref float c1, ref float c2, ref float c3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> d0 = c0, d1 = c1, d2 = c2, d3 = c3;
            Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
                ref d0, ref d1, ref d2, ref d3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
            c0 = d0.Value; c1 = d1.Value; c2 = d2.Value; c3 = d3.Value;
        }
        else
        {
            MmaEmulator.Mma<PtxIsaLaneLayout>(ref c0, ref c1, ref c2, ref c3, a0, a1, a2, a3, b0, b1);
        }
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void LdMatrixX4(ArrayView<ushort> shared, uint sharedBase, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3) =>
        LdMatrix(false, shared, sharedBase, rowElement, out r0, out r1, out r2, out r3);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void LdMatrixX4Trans(ArrayView<ushort> shared, uint sharedBase, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3) =>
        LdMatrix(true, shared, sharedBase, rowElement, out r0, out r1, out r2, out r3);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LdMatrix(bool trans, ArrayView<ushort> shared, uint sharedBase, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
            Input<uint> address = sharedBase + (uint)rowElement * 2u;
            // trans is a constant at every call site, so only one of the two instructions survives inlining.
            if (trans) CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];", ref o0, ref o1, ref o2, ref o3, ref address);
            else CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];", ref o0, ref o1, ref o2, ref o3, ref address);
            r0 = o0.Value; r1 = o1.Value; r2 = o2.Value; r3 = o3.Value;
        }
        else if (trans)
        {
            MmaEmulator.LdMatrixX4Trans(shared, rowElement, out r0, out r1, out r2, out r3);
        }
        else
        {
            MmaEmulator.LdMatrixX4(shared, rowElement, out r0, out r1, out r2, out r3);
        }
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CpAsync16(ArrayView<ushort> shared, uint sharedBase, int sharedElement, ArrayView<ushort> global, ulong globalBase, int globalElement, int validElements)
    {
        if (CudaAsm.IsSupported)
        {
            // src-size 0 reads nothing and fills 16 zero bytes; point it at the base so no address is formed past the end.
            ulong source = validElements > 0 ? globalBase + (ulong)globalElement * 2ul : globalBase;
            Input<uint> dst = sharedBase + (uint)sharedElement * 2u;
            Input<uint> lo = (uint)source, hi = (uint)(source >> 32);
            Input<uint> bytes = (uint)(validElements * 2);
            CudaAsm.EmitRef(
                "{ .reg .u64 g; mov.b64 g, {%1,%2}; cvta.to.global.u64 g, g; cp.async.cg.shared.global [%0], [g], 16, %3; }",
                ref dst, ref lo, ref hi, ref bytes);
        }
        else
        {
            MmaEmulator.CpAsync16(shared, sharedElement, global, globalElement, validElements);
        }
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CommitGroup()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.commit_group;");
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitGroupAllButOne()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 1;");
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WaitAll()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_all;");
    }
}
