using ILGPU;
using ILGPU.Runtime.CPU;
using ZImage.Kernels;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>
/// One ILGPU CPU accelerator (parallel mode, portable kernels) and one <see cref="KernelComputeOps"/> shared by all
/// compute and transformer tests: kernel compilation happens once per test run.
/// </summary>
public sealed class ComputeFixture : IDisposable
{
    public ComputeFixture()
    {
        IlgpuContext = IlgpuContexts.CreateCpu();
        Accelerator = IlgpuContext.GetCPUDevice(0).CreateCPUAccelerator(IlgpuContext, CPUAcceleratorMode.Parallel);
        Kernels = new KernelContext(Accelerator, KernelVariant.Portable);
        Ops = new KernelComputeOps(Kernels);
    }

    public Context IlgpuContext { get; }
    public CPUAccelerator Accelerator { get; }
    public KernelContext Kernels { get; }
    public KernelComputeOps Ops { get; }

    /// <summary>A fresh caching allocator over the accelerator (real memory), with the given settings.</summary>
    public CachingAllocator CreateAllocator(AllocatorSettings? settings = null) =>
        new(new AcceleratorMemoryBackend(Accelerator), settings, ownsBackend: true);

    /// <summary>A compute context over a fresh real allocator.</summary>
    public ComputeContext CreateContext(CachingAllocator allocator) => new(allocator, Ops);

    /// <summary>Allocates and fills an F32 tensor.</summary>
    public Tensor Upload(IDeviceAllocator allocator, float[] data, params int[] shape)
    {
        var t = new Tensor(allocator.Allocate(Math.Max(1, data.Length) * 4L, "test"), TensorDType.F32, shape);
        Ops.Upload(data, t);
        return t;
    }

    public void Dispose()
    {
        Ops.Dispose();
        Accelerator.Dispose();
        IlgpuContext.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class ComputeCollection : ICollectionFixture<ComputeFixture>
{
    public const string Name = "compute";
}
