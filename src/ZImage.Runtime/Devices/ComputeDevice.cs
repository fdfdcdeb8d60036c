using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ZImage.Runtime.Interop;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Devices;

/// <summary>
/// The accelerator the runtime computes on: owns the ILGPU <see cref="ILGPU.Context"/> and <see cref="ILGPU.Runtime.Accelerator"/>,
/// plus, on CUDA, our own <see cref="CudaDriver"/> binding for what ILGPU lacks. Create it with
/// <see cref="DeviceSelector.Select"/>; dispose it last (after every buffer and backend made from it).
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    private readonly long _cpuCapacityBytes;
    private int _disposed;

    internal ComputeDevice(Context context, Accelerator accelerator, DeviceReport report, CudaDriver? driver, int cudaDeviceHandle, long cpuCapacityBytes)
    {
        Context = context;
        Accelerator = accelerator;
        Report = report;
        Driver = driver;
        CudaDeviceHandle = cudaDeviceHandle;
        _cpuCapacityBytes = cpuCapacityBytes;
    }

    /// <summary>The ILGPU context.</summary>
    public Context Context { get; }

    /// <summary>The ILGPU accelerator (a <see cref="CudaAccelerator"/> or a CPU accelerator).</summary>
    public Accelerator Accelerator { get; }

    /// <summary>What the selector found.</summary>
    public DeviceReport Report { get; }

    /// <summary>Which accelerator this is.</summary>
    public AcceleratorKind Kind => Report.Kind;

    /// <summary>Whether this is a CUDA device.</summary>
    public bool IsCuda => Report.Kind == AcceleratorKind.Cuda;

    /// <summary>Our CUDA driver binding; <see langword="null"/> on the CPU accelerator.</summary>
    internal CudaDriver? Driver { get; }

    /// <summary>The driver's <c>CUdevice</c> handle (valid only when <see cref="IsCuda"/>).</summary>
    public int CudaDeviceHandle { get; }

    /// <summary>
    /// Device total and free bytes now. CUDA: <c>cuMemGetInfo_v2</c> with this accelerator's context current (no
    /// synchronization). CPU: the configured capacity as total and free (the CPU has no device-wide accounting; a
    /// backend subtracts what it allocated).
    /// </summary>
    public DeviceMemoryInfo GetMemoryInfo()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!IsCuda)
            return new DeviceMemoryInfo(_cpuCapacityBytes, _cpuCapacityBytes);
        using var binding = Accelerator.BindScoped();
        if (Driver is not null)
            return Driver.GetMemoryInfo();
        CudaAPI.CurrentAPI.GetMemoryInfo(out long free, out long total);
        return new DeviceMemoryInfo(total, free);
    }

    /// <summary>Runs <paramref name="action"/> with this accelerator's CUDA context current on the calling thread.</summary>
    public T WithContext<T>(Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        using var binding = Accelerator.BindScoped();
        return action();
    }

    /// <summary>Creates a backend whose segments are ILGPU buffers on this accelerator.</summary>
    public AcceleratorMemoryBackend CreateAcceleratorBackend(AcceleratorMemoryBackendOptions? options = null) => new(this, options);

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        Accelerator.Dispose();
        Context.Dispose();
    }
}
