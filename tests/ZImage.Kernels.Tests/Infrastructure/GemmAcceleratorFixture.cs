using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>
/// One ILGPU context with the two CPU accelerators the GEMM/attention/RoPE tests run on, and the kernel families
/// compiled once for each (creating accelerators and compiling kernels is the slow part of these tests):
/// <list type="bullet">
/// <item><see cref="Portable"/>: the default CPU device (16 threads per group) with the portable variant;</item>
/// <item><see cref="Gpu"/>: a GPU-shaped CPU device (256 threads per group, warp 32) with the GPU variant forced.</item>
/// </list>
/// </summary>
public sealed class GemmAcceleratorFixture : IDisposable
{
    private readonly Lazy<GemmKernels> _portableGemm, _gpuGemm;
    private readonly Lazy<AttentionKernels> _portableAttention, _gpuAttention;
    private readonly Lazy<RopeKernels> _portableRope, _gpuRope;

    /// <summary>Creates the context and both accelerators; kernel families compile on first use.</summary>
    public GemmAcceleratorFixture()
    {
        IlContext = Context.Create(b => b.CPU());
        PortableAccelerator = IlContext.GetCPUDevice(0).CreateCPUAccelerator(IlContext, CPUAcceleratorMode.Parallel);
        GpuAccelerator = KernelContext.CreateGpuShapedCpuAccelerator(IlContext);
        Portable = new KernelContext(PortableAccelerator);
        Gpu = new KernelContext(GpuAccelerator, KernelVariant.Gpu);
        _portableGemm = new(() => new GemmKernels(Portable));
        _gpuGemm = new(() => new GemmKernels(Gpu));
        _portableAttention = new(() => new AttentionKernels(Portable));
        _gpuAttention = new(() => new AttentionKernels(Gpu));
        _portableRope = new(() => new RopeKernels(Portable));
        _gpuRope = new(() => new RopeKernels(Gpu));
    }

    /// <summary>The ILGPU context.</summary>
    public Context IlContext { get; }
    /// <summary>Default CPU accelerator (Parallel mode).</summary>
    public CPUAccelerator PortableAccelerator { get; }
    /// <summary>CPU accelerator with GPU-sized groups.</summary>
    public CPUAccelerator GpuAccelerator { get; }
    /// <summary>Portable-variant context on <see cref="PortableAccelerator"/>.</summary>
    public KernelContext Portable { get; }
    /// <summary>GPU-variant context on <see cref="GpuAccelerator"/>.</summary>
    public KernelContext Gpu { get; }

    /// <summary>GEMM kernels for a variant.</summary>
    public GemmKernels Gemm(KernelVariant variant) => variant == KernelVariant.Gpu ? _gpuGemm.Value : _portableGemm.Value;
    /// <summary>Attention kernels for a variant.</summary>
    public AttentionKernels Attention(KernelVariant variant) => variant == KernelVariant.Gpu ? _gpuAttention.Value : _portableAttention.Value;
    /// <summary>RoPE kernels for a variant.</summary>
    public RopeKernels Rope(KernelVariant variant) => variant == KernelVariant.Gpu ? _gpuRope.Value : _portableRope.Value;

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
        GpuAccelerator.Dispose();
        PortableAccelerator.Dispose();
        IlContext.Dispose();
    }
}

/// <summary>Test collection sharing one <see cref="GemmAcceleratorFixture"/> across GEMM, attention and RoPE tests.</summary>
[CollectionDefinition(Name)]
public sealed class GemmAcceleratorCollection : ICollectionFixture<GemmAcceleratorFixture>
{
    /// <summary>The collection name.</summary>
    public const string Name = "GEMM/attention/RoPE accelerators";
}
