using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>
/// The accelerators of every available backend (<see cref="KernelBackends"/>), shared by the norm / conv /
/// elementwise / diffusion kernel tests: the default CPU device (portable variants), a GPU-shaped CPU device
/// (256-thread groups) on which the GPU variants are forced, and a CUDA device where one is present. Kernel
/// families are created lazily, once per accelerator.
/// </summary>
public sealed class NormConvFixture : IDisposable
{
    private readonly BackendAccelerators _backends = new();
    private readonly PerBackend<NormKernels> _norm;
    private readonly PerBackend<ElementwiseKernels> _elementwise;
    private readonly PerBackend<ConvKernels> _conv;
    private readonly PerBackend<DiffusionKernels> _diffusion;

    /// <summary>Creates the context and the CPU accelerators.</summary>
    public NormConvFixture()
    {
        _norm = new(_backends, k => new NormKernels(k));
        _elementwise = new(_backends, k => new ElementwiseKernels(k));
        _conv = new(_backends, k => new ConvKernels(k));
        _diffusion = new(_backends, k => new DiffusionKernels(k));
    }

    /// <summary>The ILGPU context.</summary>
    public Context Context => _backends.Context;

    /// <summary>Default CPU accelerator (≤ 16 threads per group).</summary>
    public CPUAccelerator Cpu => (CPUAccelerator)Portable.Accelerator;

    /// <summary>CPU accelerator with GPU-sized groups.</summary>
    public CPUAccelerator GpuShaped => (CPUAccelerator)Gpu.Accelerator;

    /// <summary>Portable variant on <see cref="Cpu"/>.</summary>
    public KernelContext Portable => _backends.For(KernelBackend.CpuPortable);

    /// <summary>GPU variant forced on <see cref="GpuShaped"/>.</summary>
    public KernelContext Gpu => _backends.For(KernelBackend.CpuGpuShaped);

    /// <summary>The kernel context of a variant on its CPU accelerator.</summary>
    public KernelContext For(bool gpu) => gpu ? Gpu : Portable;

    /// <summary>The kernel context of a backend.</summary>
    public KernelContext For(KernelBackend backend) => _backends.For(backend);

    /// <summary>Norm kernels for a variant on its CPU accelerator.</summary>
    public NormKernels Norm(bool gpu) => _norm[OnCpu(gpu)];

    /// <summary>Norm kernels of a backend.</summary>
    public NormKernels Norm(KernelBackend backend) => _norm[backend];

    /// <summary>Elementwise kernels for a variant on its CPU accelerator.</summary>
    public ElementwiseKernels Elementwise(bool gpu) => _elementwise[OnCpu(gpu)];

    /// <summary>Elementwise kernels of a backend.</summary>
    public ElementwiseKernels Elementwise(KernelBackend backend) => _elementwise[backend];

    /// <summary>Conv kernels for a variant on its CPU accelerator.</summary>
    public ConvKernels Conv(bool gpu) => _conv[OnCpu(gpu)];

    /// <summary>Conv kernels of a backend.</summary>
    public ConvKernels Conv(KernelBackend backend) => _conv[backend];

    /// <summary>Diffusion kernels for a variant on its CPU accelerator.</summary>
    public DiffusionKernels Diffusion(bool gpu) => _diffusion[OnCpu(gpu)];

    /// <summary>Diffusion kernels of a backend.</summary>
    public DiffusionKernels Diffusion(KernelBackend backend) => _diffusion[backend];

    /// <inheritdoc />
    public void Dispose()
    {
        _diffusion.Dispose();
        _conv.Dispose();
        _elementwise.Dispose();
        _norm.Dispose();
        _backends.Dispose();
    }

    private static KernelBackend OnCpu(bool gpu) => gpu ? KernelBackend.CpuGpuShaped : KernelBackend.CpuPortable;
}

/// <summary>All norm/conv/elementwise/diffusion test classes share one <see cref="NormConvFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class NormConvCollection : ICollectionFixture<NormConvFixture>
{
    /// <summary>Collection name.</summary>
    public const string Name = "NormConv kernels";
}
