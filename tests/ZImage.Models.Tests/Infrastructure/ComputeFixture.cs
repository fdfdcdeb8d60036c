using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ZImage.Tests.Infrastructure;
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
        if (TestDevice.UseCuda)
        {
            // ZIMAGE_TEST_DEVICE=cuda: the first CUDA device with the GPU kernel variants.
            IlgpuContext = IlgpuContexts.CreateCudaAndCpu();
            Accelerator = IlgpuContext.GetCudaDevices()[0].CreateCudaAccelerator(IlgpuContext);
            Kernels = new KernelContext(Accelerator, KernelVariant.Gpu);
        }
        else
        {
            IlgpuContext = IlgpuContexts.CreateCpu();
            Accelerator = IlgpuContext.GetCPUDevice(0).CreateCPUAccelerator(IlgpuContext, CPUAcceleratorMode.Parallel);
            Kernels = new KernelContext(Accelerator, KernelVariant.Portable);
        }

        Ops = new KernelComputeOps(Kernels);
    }

    public Context IlgpuContext { get; }
    public Accelerator Accelerator { get; }
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
