using ILGPU;
using ILGPU.Runtime.CPU;
using ZImage.Kernels;

namespace ZImage.Bench.Kernels;

/// <summary>
/// Shared set-up of the kernel benchmarks: one ILGPU context with the default CPU accelerator (Parallel mode, the
/// portable variants), and the parsing of "AxBxC" shape parameters.
/// </summary>
public abstract class CpuKernelBenchmark
{
    private Context? _context;
    private CPUAccelerator? _accelerator;

    /// <summary>The CPU accelerator (after <see cref="StartAccelerator"/>).</summary>
    protected CPUAccelerator Accelerator => _accelerator ?? throw new InvalidOperationException("The benchmark's GlobalSetup has not run.");

    /// <summary>Creates the context and accelerator; returns the kernel context the kernels are built on.</summary>
    protected KernelContext StartAccelerator()
    {
        _context = IlgpuContexts.CreateCpu();
        _accelerator = _context.GetCPUDevice(0).CreateCPUAccelerator(_context, CPUAcceleratorMode.Parallel);
        return new KernelContext(_accelerator);
    }

    /// <summary>Disposes the accelerator and the context.</summary>
    protected void StopAccelerator()
    {
        _accelerator?.Dispose();
        _context?.Dispose();
    }

    /// <summary>The dimensions of a shape string such as "256x2x32".</summary>
    protected static int[] Dims(string shape) => shape.Split('x').Select(int.Parse).ToArray();
}
