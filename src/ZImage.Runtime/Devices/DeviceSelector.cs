using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ZImage.Kernels;
using ZImage.Runtime.Interop;
using CudaException = ZImage.Runtime.Interop.CudaException;
using NvmlException = ZImage.Runtime.Interop.NvmlException;

namespace ZImage.Runtime.Devices;

/// <summary>
/// Picks the accelerator: CUDA through ILGPU when a usable device is present, ILGPU's CPU accelerator otherwise (or
/// when forced). Never crashes on a GPU-less machine: every reason for falling back ends up in the
/// <see cref="DeviceReport"/>.
/// </summary>
public static class DeviceSelector
{
    private static int _resolverInstalled;
    private static volatile string? _driverLibraryForIlgpu;

    /// <summary>Probes CUDA and creates the chosen <see cref="ComputeDevice"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="CudaUnavailableException"><see cref="DeviceOptions.RequireCuda"/> is set and CUDA is unusable.</exception>
    public static ComputeDevice Select(DeviceOptions? options = null)
    {
        options ??= new DeviceOptions();
        options.Validate();
        var probe = options.ForceCpu
            ? Fallback(CudaStatus.ForcedCpu, "The CPU accelerator was forced by the options.")
            : ProbeCuda(options);
        if (probe.Device is not null)
            return probe.Device;
        if (options.RequireCuda)
            throw new CudaUnavailableException(CpuReport(probe, options, "(not created)", 0));
        return CreateCpu(options, probe);
    }

    /// <summary>Selects a device as <see cref="Select"/> does, keeps its report and disposes it again (what <c>zimage info</c> prints).</summary>
    public static DeviceReport ProbeReport(DeviceOptions? options = null)
    {
        using var device = Select(options);
        return device.Report;
    }

    private sealed record Probe(CudaStatus Status, string Reason, string? ErrorName = null, int? ErrorCode = null,
        string? Library = null, int? DriverVersion = null, int DeviceCount = 0, ComputeDevice? Device = null);

    private static Probe Fallback(CudaStatus status, string reason) => new(status, reason);

    private static Probe ProbeCuda(DeviceOptions options)
    {
        var load = CudaDriver.TryLoad(options.CudaLibraryNames);
        if (load.Status == CudaDriverLoadStatus.LibraryMissing)
            return new Probe(CudaStatus.DriverLibraryMissing, load.Reason, Library: load.LibraryName);
        if (load.Status == CudaDriverLoadStatus.EntryPointMissing)
            return new Probe(CudaStatus.DriverEntryPointMissing, load.Reason, Library: load.LibraryName);

        var driver = load.Driver!;
        int version = 0, count = 0;
        try
        {
            driver.Init();
            version = driver.GetDriverVersion();
            count = driver.GetDeviceCount();
        }
        catch (CudaException ex)
        {
            var status = ex.ErrorCode == CudaErrorNames.NoDevice ? CudaStatus.NoDevice : CudaStatus.InitFailed;
            return new Probe(status, ex.Message, ex.ErrorName, ex.ErrorCode, driver.LibraryName, version == 0 ? null : version);
        }

        if (count == 0)
            return new Probe(CudaStatus.NoDevice, "The CUDA driver reports no device.", Library: driver.LibraryName, DriverVersion: version);
        if (options.DeviceIndex >= count)
            return new Probe(CudaStatus.DeviceIndexOutOfRange,
                $"Device index {options.DeviceIndex} is out of range; the driver reports {count} device(s) (allowed 0..{count - 1}).",
                Library: driver.LibraryName, DriverVersion: version, DeviceCount: count);

        Context? context = null;
        Accelerator? accelerator = null;
        try
        {
            EnsureIlgpuFindsDriver(driver.LibraryName);
            context = IlgpuContexts.CreateCudaAndCpu(options.CpuDevice);
            var devices = context.GetCudaDevices();
            if (options.DeviceIndex >= devices.Count)
                throw new InvalidOperationException($"ILGPU lists {devices.Count} CUDA device(s) but the driver reports {count}; the GPU may be too old or too new for ILGPU 1.5.3.");
            var cudaDevice = devices[options.DeviceIndex];
            accelerator = cudaDevice.CreateCudaAccelerator(context);
            int handle = driver.GetDevice(options.DeviceIndex);
            var memory = WithBound(accelerator, driver.GetMemoryInfo);
            int major = driver.GetDeviceAttribute(CudaDeviceAttribute.ComputeCapabilityMajor, handle);
            int minor = driver.GetDeviceAttribute(CudaDeviceAttribute.ComputeCapabilityMinor, handle);
            bool pools = driver.HasStreamOrderedAllocator && driver.GetDeviceAttribute(CudaDeviceAttribute.MemoryPoolsSupported, handle) == 1;
            var report = new DeviceReport
            {
                Kind = AcceleratorKind.Cuda,
                DeviceName = accelerator.Name,
                CudaStatus = CudaStatus.Available,
                CudaReason = $"Using CUDA device {options.DeviceIndex} of {count}.",
                DriverLibrary = driver.LibraryName,
                DriverVersion = version,
                CudaDeviceCount = count,
                DeviceIndex = options.DeviceIndex,
                ComputeCapability = major.ToString(CultureInfo.InvariantCulture) + "." + minor.ToString(CultureInfo.InvariantCulture),
                MemoryPoolsSupported = pools,
                TotalBytes = memory.TotalBytes,
                FreeBytes = memory.FreeBytes,
            };
            report = options.UseNvml ? AddNvml(report, options, cudaDevice.NVMLPCIBusId) : report;
            return new Probe(CudaStatus.Available, report.CudaReason, Device: new ComputeDevice(context, accelerator, report, driver, handle, 0));
        }
        catch (Exception ex) when (ex is CudaException or InvalidOperationException or ILGPU.Runtime.Cuda.CudaException or NotSupportedException or DllNotFoundException or AcceleratorException)
        {
            accelerator?.Dispose();
            context?.Dispose();
            var cuda = ex as CudaException;
            return new Probe(CudaStatus.AcceleratorFailed, "ILGPU could not use the CUDA device: " + ex.Message,
                cuda?.ErrorName, cuda?.ErrorCode, driver.LibraryName, version, count);
        }
    }

    private static DeviceReport AddNvml(DeviceReport report, DeviceOptions options, string? pciBusId)
    {
        var nvml = NvmlLibrary.TryLoad(out string reason, options.NvmlLibraryNames);
        if (nvml is null)
            return report with { NvmlStatus = reason };
        try
        {
            var memory = nvml.GetMemoryReport(pciBusId, options.DeviceIndex);
            return report with
            {
                NvmlStatus = reason,
                Processes = memory.Processes,
                OtherProcessesBytes = memory.OtherProcessesBytes(Environment.ProcessId),
            };
        }
        catch (NvmlException ex)
        {
            return report with { NvmlStatus = ex.Message };
        }
    }

    private static ComputeDevice CreateCpu(DeviceOptions options, Probe probe)
    {
        var cpuDevice = options.CpuDevice ?? CPUDevice.Default;
        var context = IlgpuContexts.CreateCpu(cpuDevice);
        try
        {
            var accelerator = cpuDevice.CreateCPUAccelerator(context, options.CpuMode);
            long capacity = options.CpuCapacityBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            return new ComputeDevice(context, accelerator, CpuReport(probe, options, accelerator.Name, capacity), null, 0, capacity);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private static DeviceReport CpuReport(Probe probe, DeviceOptions options, string name, long capacity) => new()
    {
        Kind = AcceleratorKind.Cpu,
        DeviceName = name,
        CudaStatus = probe.Status,
        CudaReason = probe.Reason,
        CudaErrorName = probe.ErrorName,
        CudaErrorCode = probe.ErrorCode,
        DriverLibrary = probe.Library,
        DriverVersion = probe.DriverVersion,
        CudaDeviceCount = probe.DeviceCount,
        TotalBytes = capacity,
        FreeBytes = capacity,
    };

    private static T WithBound<T>(Accelerator accelerator, Func<T> call)
    {
        using var binding = accelerator.BindScoped();
        return call();
    }

    // ILGPU imports the driver as "cuda" (libcuda.so), which is missing where only libcuda.so.1 is installed (no
    // CUDA toolkit). When the default probe fails, hand ILGPU the library our own probe loaded.
    private static void EnsureIlgpuFindsDriver(string libraryName)
    {
        _driverLibraryForIlgpu = libraryName;
        if (Interlocked.Exchange(ref _resolverInstalled, 1) != 0)
            return;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += ResolveForIlgpu;
    }

    private static IntPtr ResolveForIlgpu(Assembly assembly, string name)
    {
        string? library = _driverLibraryForIlgpu;
        if (library is null || assembly != typeof(Context).Assembly || name is not ("cuda" or "nvcuda" or "libcuda" or "libcuda.so"))
            return IntPtr.Zero;
        return NativeLibrary.TryLoad(library, out IntPtr handle) ? handle : IntPtr.Zero;
    }
}
