using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>
/// The accelerators of every available backend (<see cref="KernelBackends"/>) the GEMM/attention/RoPE tests run on,
/// and the kernel families compiled once for each (creating accelerators and compiling kernels is the slow part of
/// these tests):
/// <list type="bullet">
/// <item><see cref="Portable"/>: the default CPU device (16 threads per group) with the portable variant;</item>
/// <item><see cref="Gpu"/>: a GPU-shaped CPU device (256 threads per group, warp 32) with the GPU variant forced;</item>
/// <item>a CUDA device with the GPU variant, where one is present.</item>
/// </list>
/// </summary>
public sealed class GemmAcceleratorFixture : IDisposable
{
    private readonly BackendAccelerators _backends = new();
    private readonly PerBackend<GemmKernels> _gemm;
    private readonly PerBackend<AttentionKernels> _attention;
    private readonly PerBackend<RopeKernels> _rope;

    /// <summary>Creates the context and the CPU accelerators; kernel families compile on first use.</summary>
    public GemmAcceleratorFixture()
    {
        _gemm = new(_backends, k => new GemmKernels(k));
        _attention = new(_backends, k => new AttentionKernels(k));
        _rope = new(_backends, k => new RopeKernels(k));
    }

    /// <summary>The ILGPU context.</summary>
    public Context IlContext => _backends.Context;
    /// <summary>Default CPU accelerator (Parallel mode).</summary>
    public CPUAccelerator PortableAccelerator => (CPUAccelerator)Portable.Accelerator;
    /// <summary>CPU accelerator with GPU-sized groups.</summary>
    public CPUAccelerator GpuAccelerator => (CPUAccelerator)Gpu.Accelerator;
    /// <summary>Portable-variant context on <see cref="PortableAccelerator"/>.</summary>
    public KernelContext Portable => _backends.For(KernelBackend.CpuPortable);
    /// <summary>GPU-variant context on <see cref="GpuAccelerator"/>.</summary>
    public KernelContext Gpu => _backends.For(KernelBackend.CpuGpuShaped);

    /// <summary>GEMM kernels for a variant on its CPU accelerator.</summary>
    public GemmKernels Gemm(KernelVariant variant) => _gemm[OnCpu(variant)];
    /// <summary>GEMM kernels of a backend.</summary>
    public GemmKernels Gemm(KernelBackend backend) => _gemm[backend];
    /// <summary>Attention kernels for a variant on its CPU accelerator.</summary>
    public AttentionKernels Attention(KernelVariant variant) => _attention[OnCpu(variant)];
    /// <summary>Attention kernels of a backend.</summary>
    public AttentionKernels Attention(KernelBackend backend) => _attention[backend];
    /// <summary>RoPE kernels for a variant on its CPU accelerator.</summary>
    public RopeKernels Rope(KernelVariant variant) => _rope[OnCpu(variant)];
    /// <summary>RoPE kernels of a backend.</summary>
    public RopeKernels Rope(KernelBackend backend) => _rope[backend];
    /// <summary>The kernel context of a backend.</summary>
    public KernelContext For(KernelBackend backend) => _backends.For(backend);

    private static KernelBackend OnCpu(KernelVariant variant) =>
        variant == KernelVariant.Gpu ? KernelBackend.CpuGpuShaped : KernelBackend.CpuPortable;

    /// <summary>Uploads <paramref name="data"/> to <paramref name="accelerator"/>.</summary>
    public static MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(Accelerator accelerator, T[] data)
        where T : unmanaged => accelerator.Allocate1D(data);

    /// <summary>Allocates <paramref name="length"/> floats filled with NaN, so unwritten outputs fail comparisons.</summary>
    public static MemoryBuffer1D<float, Stride1D.Dense> Poisoned(Accelerator accelerator, int length)
    {
        var nan = new float[length];
        Array.Fill(nan, float.NaN);
        return accelerator.Allocate1D(nan);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _rope.Dispose();
        _attention.Dispose();
        _gemm.Dispose();
        _backends.Dispose();
    }
}

/// <summary>Test collection sharing one <see cref="GemmAcceleratorFixture"/> across GEMM, attention and RoPE tests.</summary>
[CollectionDefinition(Name)]
public sealed class GemmAcceleratorCollection : ICollectionFixture<GemmAcceleratorFixture>
{
    /// <summary>The collection name.</summary>
    public const string Name = "GEMM/attention/RoPE accelerators";
}
