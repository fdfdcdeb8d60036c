using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels.Mma;

namespace ZImage.Kernels.Tests.Mma;

/// <summary>The emulated ldmatrix/mma against the PTX ISA's per-lane tables, written out element by element.</summary>
[Trait("Category", "MmaEmulation")]
public sealed class MmaEmulatorSpecTests(MmaFixture fx) : IClassFixture<MmaFixture>
{
    [Fact]
    public void EmulatedLdMatrixAndMmaFollowThePtxIsaLaneTables()
    {
        var acc = fx.Accelerator;
        var kernel = acc.LoadKernel<ArrayView<ushort>, ArrayView<uint>, ArrayView<float>>(SpecKernel);
        // Four 8×8 matrices stored row-major one after another; element value = its index (exact in bf16 up to 256).
        using var src = acc.Allocate1D(Enumerable.Range(0, 256).Select(i => Bf16.FromFloat(i)).ToArray());
        using var regs = acc.Allocate1D<uint>(32 * 8);
        using var d = acc.Allocate1D<float>(32 * 4);
        kernel(acc.DefaultStream, new KernelConfig(1, 32), src.View, regs.View, d.View);
        acc.Synchronize();
        var r = regs.GetAsArray1D();
        var dd = d.GetAsArray1D();

        for (int lane = 0; lane < 32; lane++)
        {
            for (int i = 0; i < 4; i++)
            {
                // x4: lane l holds row l/4, columns 2(l%4), 2(l%4)+1 of matrix i.
                int row = lane / 4, col = 2 * (lane % 4);
                Assert.Equal(Pack(64 * i + 8 * row + col, 64 * i + 8 * row + col + 1), r[lane * 8 + i]);
                // .trans: lane l holds (row 2(l%4), col l/4) and (row 2(l%4)+1, col l/4).
                Assert.Equal(Pack(64 * i + 8 * col + row, 64 * i + 8 * (col + 1) + row), r[lane * 8 + 4 + i]);
            }
        }

        // The four matrices as an A fragment (16×16: [m0 m2; m1 m3]) times the identity-like B (B[k][n] = 1 when k == n):
        // D[r][c] = A[r][c] for c < 8. Lane (g, t) holds D[g][2t..2t+1] and D[g+8][2t..2t+1].
        for (int lane = 0; lane < 32; lane++)
        {
            int g = lane / 4, t = lane % 4;
            Assert.Equal(8 * g + 2 * t, dd[lane * 4]);
            Assert.Equal(8 * g + 2 * t + 1, dd[lane * 4 + 1]);
            Assert.Equal(64 + 8 * g + 2 * t, dd[lane * 4 + 2]);
            Assert.Equal(64 + 8 * g + 2 * t + 1, dd[lane * 4 + 3]);
        }
    }

    private static uint Pack(int lo, int hi) => MmaEmulator.Pack(Bf16.FromFloat(lo), Bf16.FromFloat(hi));

    private static void SpecKernel(ArrayView<ushort> src, ArrayView<uint> regs, ArrayView<float> d)
    {
        int lane = Group.IdxX;
        // Lanes 8i..8i+7 give the rows of matrix i.
        int rowElement = 64 * (lane / 8) + 8 * (lane % 8);
        MmaEmulator.LdMatrixX4(src, rowElement, out uint a0, out uint a1, out uint a2, out uint a3);
        MmaEmulator.LdMatrixX4Trans(src, rowElement, out uint t0, out uint t1, out uint t2, out uint t3);
        regs[lane * 8] = a0; regs[lane * 8 + 1] = a1; regs[lane * 8 + 2] = a2; regs[lane * 8 + 3] = a3;
        regs[lane * 8 + 4] = t0; regs[lane * 8 + 5] = t1; regs[lane * 8 + 6] = t2; regs[lane * 8 + 7] = t3;
        // B fragment of the 16×8 matrix B[k][n] = (k == n): b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g] (all zero).
        int g = lane >> 2, t = lane & 3;
        uint b0 = MmaEmulator.Pack(Bf16.FromFloat(2 * t == g ? 1f : 0f), Bf16.FromFloat(2 * t + 1 == g ? 1f : 0f));
        float c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        MmaEmulator.Mma<PtxIsaLaneLayout>(ref c0, ref c1, ref c2, ref c3, a0, a1, a2, a3, b0, 0u);
        d[lane * 4] = c0; d[lane * 4 + 1] = c1; d[lane * 4 + 2] = c2; d[lane * 4 + 3] = c3;
    }
}
