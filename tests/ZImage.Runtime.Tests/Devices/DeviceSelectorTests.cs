using ZImage.Runtime.Devices;
using ZImage.Runtime.Interop;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Devices;

public class DeviceSelectorTests
{
    private static DeviceOptions Missing() => new() { CudaLibraryNames = ["libcuda-zimage-test-absent.so.1"], CpuCapacityBytes = 64 * ByteSize.MiB };

    [Fact]
    public void MissingDriverFallsBackToCpuAndSaysWhy()
    {
        using var device = DeviceSelector.Select(Missing());

        Assert.Equal(AcceleratorKind.Cpu, device.Kind);
        Assert.Equal(ILGPU.Runtime.AcceleratorType.CPU, device.Accelerator.AcceleratorType);
        Assert.Equal(CudaStatus.DriverLibraryMissing, device.Report.CudaStatus);
        Assert.Contains("libcuda-zimage-test-absent.so.1", device.Report.CudaReason);
        Assert.Contains("DriverLibraryMissing", device.Report.ToText());
        Assert.Null(device.Driver);
        Assert.Equal(64 * ByteSize.MiB, device.Report.TotalBytes);
    }

    [Fact]
    public void DefaultProbeOnThisMachineReportsWhatTheDriverLoadFound()
    {
        var load = CudaDriver.TryLoad();
        var report = DeviceSelector.ProbeReport(new DeviceOptions { CpuCapacityBytes = ByteSize.GiB });

        // Without an NVIDIA driver (this CI machine) the report must say the library is missing.
        if (load.Status == CudaDriverLoadStatus.LibraryMissing)
        {
            Assert.Equal(CudaStatus.DriverLibraryMissing, report.CudaStatus);
            Assert.Equal(AcceleratorKind.Cpu, report.Kind);
        }
        else
        {
            Assert.NotEqual(CudaStatus.DriverLibraryMissing, report.CudaStatus);
        }
    }

    [Fact]
    public void ForeignDriverLibraryIsReportedAsMissingEntryPoint()
    {
        using var device = DeviceSelector.Select(new DeviceOptions { CudaLibraryNames = [ForeignNativeLibrary.Path] });

        Assert.Equal(CudaStatus.DriverEntryPointMissing, device.Report.CudaStatus);
        Assert.Contains("cuInit", device.Report.CudaReason);
    }

    [Fact]
    public void ForcedCpuDoesNotProbe()
    {
        using var device = DeviceSelector.Select(new DeviceOptions { ForceCpu = true, CpuCapacityBytes = ByteSize.GiB });

        Assert.Equal(CudaStatus.ForcedCpu, device.Report.CudaStatus);
        Assert.Null(device.Report.DriverLibrary);
    }

    [Fact]
    public void RequiredCudaThrowsWithTheReport()
    {
        var options = Missing();
        options.RequireCuda = true;

        var ex = Assert.Throws<CudaUnavailableException>(() => DeviceSelector.Select(options));

        Assert.Equal(CudaStatus.DriverLibraryMissing, ex.Report.CudaStatus);
        Assert.Contains("DriverLibraryMissing", ex.Message);
    }

    [Fact]
    public void NegativeDeviceIndexIsRejectedByName() =>
        Assert.Equal(nameof(DeviceOptions.DeviceIndex), Assert.Throws<ArgumentOutOfRangeException>(() => DeviceSelector.Select(new DeviceOptions { DeviceIndex = -1 })).ParamName);

    [Fact]
    public void NonPositiveCpuCapacityIsRejectedByName() =>
        Assert.Equal(nameof(DeviceOptions.CpuCapacityBytes), Assert.Throws<ArgumentOutOfRangeException>(() => new DeviceOptions { CpuCapacityBytes = 0 }.Validate()).ParamName);

    [Fact]
    public void CpuMemoryInfoIsTheCapacityAndDisposedDeviceRefuses()
    {
        var device = DeviceSelector.Select(Missing());

        Assert.Equal(new DeviceMemoryInfo(64 * ByteSize.MiB, 64 * ByteSize.MiB), device.GetMemoryInfo());
        device.Dispose();
        device.Dispose();
        Assert.Throws<ObjectDisposedException>(() => device.GetMemoryInfo());
    }

    [Fact]
    public void PoolBackendIsNotSupportedOnTheCpuAccelerator()
    {
        using var device = DeviceSelector.Select(Missing());

        Assert.False(StreamOrderedPoolBackend.IsSupported(device, out string reason));
        var ex = Assert.Throws<StreamOrderedPoolNotSupportedException>(() => StreamOrderedPoolBackend.Create(device));
        Assert.Contains("needs a CUDA accelerator", ex.Reason);
        Assert.Equal(reason, ex.Reason);
        Assert.Contains("DriverLibraryMissing", ex.Message);
    }
}
