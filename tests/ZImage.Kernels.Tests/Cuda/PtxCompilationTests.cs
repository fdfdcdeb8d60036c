using ZImage.Kernels.Tests.Infrastructure;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime.Cuda;
using ZImage.Runtime.Diagnostics;

namespace ZImage.Kernels.Tests.Cuda;

/// <summary>
/// Every kernel ZImage loads compiles for CUDA (offline, ILGPU's PTX backend, the runtime's context settings) for the
/// four default architectures, without <c>.local</c> memory in any GPU-variant kernel. What <c>zimage kernels --ptx</c>
/// checks, on every CI run.
/// </summary>
public sealed class PtxCompilationTests
{
    [Fact]
    public void EveryLoadedKernelCompilesForEveryDefaultArchitectureWithoutLocalMemoryInGpuVariants()
    {
        var entries = KernelRegistry.Discover();
        var reports = PtxCompiler.Compile(entries, PtxCompiler.DefaultArchitectures);

        var failed = reports.Where(r => !r.Ok).Select(r => $"{r.Family}.{r.Name}@{r.Arch}: {r.Error}").ToList();
        Assert.True(failed.Count == 0, string.Join(Environment.NewLine, failed));
        var local = reports.Where(r => r.Variant == "gpu" && r.LocalBytes > 0).Select(r => $"{r.Family}.{r.Name}@{r.Arch}: {r.LocalBytes} B").ToList();
        Assert.True(local.Count == 0, ".local memory in GPU kernels: " + string.Join(", ", local));
        Assert.Equal(entries.Count * 4, reports.Count);
        Assert.True(PtxSummary.Of(reports).Passed);
        // Discovery found every family and every generic instantiation the families load.
        Assert.Equal(KernelRegistry.FamilyTypes().Select(t => t.Name).Order(), entries.Select(e => e.Family).Distinct().Order());
        Assert.Contains(entries, e => e is { Family: "GemmKernels", Name: "GpuKernel<UInt16,Bf16Widener>", Variant: "gpu", IsExplicitlyGrouped: true });
        Assert.Contains(entries, e => e is { Family: "ConvKernels", Name: "ConvPortable<Half,ConvWeightF16>", Variant: "portable" });
        Assert.All(reports, r => Assert.Contains(".entry", r.Ptx!, StringComparison.Ordinal));
        AssertTensorCoreKernelsUseTheTensorCores(reports);
    }

    /// <summary>
    /// The mma families' GPU kernels carry the tensor-core instructions in their PTX (inline asm, not the emulator),
    /// address shared memory through the one static allocation their asm names, and stage asm operands only through
    /// 4-byte slots (asm_slot_bytes), never other local memory.
    /// </summary>
    private static void AssertTensorCoreKernelsUseTheTensorCores(IReadOnlyList<PtxKernelReport> reports)
    {
        var mma = reports.Where(r => r.Family is "MmaGemmKernels" or "MmaAttentionKernels").ToList();
        Assert.Equal(12 * PtxCompiler.DefaultArchitectures.Count, mma.Count);   // 4 bf16-weight GEMM + 2 8-bit GEMM + 6 attention instantiations
        Assert.All(mma, r =>
        {
            Assert.Equal("gpu", r.Variant);
            Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", r.Ptx!, StringComparison.Ordinal);
            Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16", r.Ptx!, StringComparison.Ordinal);
            Assert.Contains("cp.async.commit_group", r.Ptx!, StringComparison.Ordinal);
            Assert.Contains(".shared .align 2 .b8 __shared_alloca0[49152]", r.Ptx!, StringComparison.Ordinal);
            Assert.DoesNotContain("__shared_alloca1", r.Ptx!, StringComparison.Ordinal);
            Assert.Equal(0L, r.LocalBytes);
            Assert.True(r.AsmSlotBytes > 0, $"{r.Name}: no asm operand slots");
        });
        Assert.All(mma.Where(r => r.Family == "MmaAttentionKernels"), r =>
            Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16", r.Ptx!, StringComparison.Ordinal));
        Assert.Contains(mma, r => r.Ptx!.Contains("cp.async.cg.shared.global", StringComparison.Ordinal));
    }

    [Fact]
    public void InlineAsmOperandSlotsAreReportedApartFromStackArraysAndSharedMemory()
    {
        var reports = PtxCompiler.Compile([Entry(nameof(AsmKernel), false), Entry(nameof(StackArrayKernel), false), Entry(nameof(SharedKernel), true)],
            [new CudaArchitecture(8, 9)]);

        Assert.All(reports, r => Assert.True(r.Ok, r.Error));
        var asm = reports[0];
        Assert.Equal((0L, 12L, 0L), (asm.LocalBytes, asm.AsmSlotBytes, asm.SharedBytes));   // three 4-byte operands
        var stack = reports[1];
        Assert.Equal((32L, 0L), (stack.LocalBytes, stack.AsmSlotBytes));                    // float[8] indexed at run time
        Assert.Equal(1024L, reports[2].SharedBytes);                                        // float[256]
        Assert.Equal(0L, reports[2].LocalBytes);
    }

    [Theory]
    [NotPerBackend("parses the architecture list; no kernel runs")]
    [InlineData("sm_75x")]
    [InlineData("compute_80")]
    [InlineData(" , ")]
    public void ArchitectureListsOtherThanSmXyAreRejectedByName(string list)
    {
        var ex = Assert.Throws<ArgumentException>(() => PtxCompiler.ParseArchitectures(list));
        Assert.Contains("sm_", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ArchitectureListsParseInOrderWithoutDuplicates()
    {
        var archs = PtxCompiler.ParseArchitectures("sm_90, sm_80,sm_90");
        Assert.Equal(["sm_90", "sm_80"], archs.Select(PtxCompiler.NameOf));
    }

    private static KernelEntryPoint Entry(string name, bool explicitly) =>
        new("PtxCompilationTests", name, "gpu", typeof(PtxCompilationTests).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!, explicitly);

    private static void AsmKernel(Index1D i, ArrayView<uint> a, ArrayView<float> o)
    {
        Input<uint> a0 = a[0];
        Ref<float> c0 = 0f, c1 = 0f;
        CudaAsm.EmitRef("add.f32 %0, %1, %1;", ref c0, ref c1);
        CudaAsm.EmitRef("mov.b32 %0, %1;", ref c1, ref a0);
        o[i] = c0.Value + c1.Value;
    }

    private static void StackArrayKernel(Index1D i, ArrayView<float> o, int k)
    {
        var arr = LocalMemory.Allocate<float>(8);
        for (int j = 0; j < 8; j++)
            arr[j] = o[j];
        o[i] = arr[k & 7];
    }

    private static void SharedKernel(ArrayView<float> o)
    {
        var s = SharedMemory.Allocate<float>(256);
        s[Group.IdxX] = o[Group.IdxX];
        Group.Barrier();
        o[Grid.GlobalIndex.X] = s[255 - Group.IdxX];
    }
}
