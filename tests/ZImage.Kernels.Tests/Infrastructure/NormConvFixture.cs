using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>
/// One ILGPU context with two CPU accelerators, shared by the norm / conv / elementwise / diffusion kernel tests:
/// the default CPU device (portable variants) and a GPU-shaped CPU device (256-thread groups) on which the GPU
/// variants are forced. Kernel families are created lazily, once per accelerator.
/// </summary>
public sealed class NormConvFixture : IDisposable
{
    private readonly Lazy<NormKernels>[] _norm;
    private readonly Lazy<ElementwiseKernels>[] _elementwise;
    private readonly Lazy<ConvKernels>[] _conv;
    private readonly Lazy<DiffusionKernels>[] _diffusion;

    /// <summary>Creates the context and both accelerators.</summary>
    public NormConvFixture()
    {
        Context = Context.Create(b => b.CPU());
        Cpu = Context.GetCPUDevice(0).CreateCPUAccelerator(Context, CPUAcceleratorMode.Parallel);
        GpuShaped = KernelContext.CreateGpuShapedCpuAccelerator(Context);
        Portable = new KernelContext(Cpu);
        Gpu = new KernelContext(GpuShaped, KernelVariant.Gpu);
        _norm = [new(() => new NormKernels(Portable)), new(() => new NormKernels(Gpu))];
        _elementwise = [new(() => new ElementwiseKernels(Portable)), new(() => new ElementwiseKernels(Gpu))];
        _conv = [new(() => new ConvKernels(Portable)), new(() => new ConvKernels(Gpu))];
        _diffusion = [new(() => new DiffusionKernels(Portable)), new(() => new DiffusionKernels(Gpu))];
    }

    /// <summary>The ILGPU context.</summary>
    public Context Context { get; }

    /// <summary>Default CPU accelerator (≤ 16 threads per group).</summary>
    public CPUAccelerator Cpu { get; }

    /// <summary>CPU accelerator with GPU-sized groups.</summary>
    public CPUAccelerator GpuShaped { get; }

    /// <summary>Portable variant on <see cref="Cpu"/>.</summary>
    public KernelContext Portable { get; }

    /// <summary>GPU variant forced on <see cref="GpuShaped"/>.</summary>
    public KernelContext Gpu { get; }

    /// <summary>The kernel context of a variant.</summary>
    public KernelContext For(bool gpu) => gpu ? Gpu : Portable;

    /// <summary>Norm kernels for a variant.</summary>
    public NormKernels Norm(bool gpu) => _norm[gpu ? 1 : 0].Value;

    /// <summary>Elementwise kernels for a variant.</summary>
    public ElementwiseKernels Elementwise(bool gpu) => _elementwise[gpu ? 1 : 0].Value;

    /// <summary>Conv kernels for a variant.</summary>
    public ConvKernels Conv(bool gpu) => _conv[gpu ? 1 : 0].Value;

    /// <summary>Diffusion kernels for a variant.</summary>
    public DiffusionKernels Diffusion(bool gpu) => _diffusion[gpu ? 1 : 0].Value;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var d in _diffusion)
        {
            if (d.IsValueCreated) d.Value.Dispose();
        }

        GpuShaped.Dispose();
        Cpu.Dispose();
        Context.Dispose();
    }
}

/// <summary>All norm/conv/elementwise/diffusion test classes share one <see cref="NormConvFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class NormConvCollection : ICollectionFixture<NormConvFixture>
{
    /// <summary>Collection name.</summary>
    public const string Name = "NormConv kernels";
}
