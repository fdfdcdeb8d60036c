using System.Globalization;
using System.Text;
using ZImage.Runtime.Interop;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Devices;

/// <summary>Which ILGPU accelerator a <see cref="ComputeDevice"/> runs on.</summary>
public enum AcceleratorKind
{
    /// <summary>ILGPU's CPU accelerator (a GPU simulator; slow, for tests and GPU-less machines).</summary>
    Cpu,
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
}

/// <summary>What the CUDA probe found; anything but <see cref="Available"/> means the CPU accelerator was used.</summary>
public enum CudaStatus
{
    /// <summary>A CUDA device was found and its accelerator created.</summary>
    Available,
    /// <summary>The options forced the CPU accelerator; CUDA was not probed.</summary>
    ForcedCpu,
    /// <summary>The driver library (<c>libcuda.so.1</c> / <c>nvcuda.dll</c>) could not be loaded.</summary>
    DriverLibraryMissing,
    /// <summary>A library loaded but lacks a required driver entry point.</summary>
    DriverEntryPointMissing,
    /// <summary><c>cuInit</c> failed; see <see cref="DeviceReport.CudaErrorName"/>.</summary>
    InitFailed,
    /// <summary>The driver works but reports no device.</summary>
    NoDevice,
    /// <summary>The requested device ordinal is not below the device count.</summary>
    DeviceIndexOutOfRange,
    /// <summary>The driver sees the device but ILGPU could not list it or create its accelerator.</summary>
    AcceleratorFailed,
}

/// <summary>
/// What <see cref="DeviceSelector"/> found: the chosen accelerator and its memory, and, when it is not a GPU, why
/// (driver missing, <c>cuInit</c> error name, no device, ...). Immutable; <c>zimage info</c> prints it.
/// </summary>
public sealed record DeviceReport
{
    /// <summary>The accelerator in use.</summary>
    public required AcceleratorKind Kind { get; init; }
    /// <summary>The accelerator's name, e.g. <c>NVIDIA H100 80GB HBM3</c> or <c>CPUAccelerator</c>.</summary>
    public required string DeviceName { get; init; }
    /// <summary>The outcome of the CUDA probe.</summary>
    public required CudaStatus CudaStatus { get; init; }
    /// <summary>A one-line explanation of <see cref="CudaStatus"/>.</summary>
    public required string CudaReason { get; init; }
    /// <summary>The CUDA error name behind a failure (e.g. <c>CUDA_ERROR_NO_DEVICE</c>), if a driver call failed.</summary>
    public string? CudaErrorName { get; init; }
    /// <summary>The numeric <c>CUresult</c> behind a failure.</summary>
    public int? CudaErrorCode { get; init; }
    /// <summary>The driver library that loaded, or the names tried.</summary>
    public string? DriverLibrary { get; init; }
    /// <summary>The driver's CUDA version as <c>cuDriverGetVersion</c> encodes it (e.g. 12040).</summary>
    public int? DriverVersion { get; init; }
    /// <summary>Number of CUDA devices the driver reports (0 when the driver is unusable).</summary>
    public int CudaDeviceCount { get; init; }
    /// <summary>The CUDA device ordinal in use, or <see langword="null"/> on the CPU accelerator.</summary>
    public int? DeviceIndex { get; init; }
    /// <summary>Compute capability, e.g. <c>9.0</c>.</summary>
    public string? ComputeCapability { get; init; }
    /// <summary>Whether the stream-ordered allocator (<c>cuMemAllocAsync</c>, memory pools) is usable on the device.</summary>
    public bool MemoryPoolsSupported { get; init; }
    /// <summary>Device total bytes (the configured capacity on the CPU accelerator).</summary>
    public long TotalBytes { get; init; }
    /// <summary>Device free bytes when probed.</summary>
    public long FreeBytes { get; init; }
    /// <summary>NVML's state: loaded, missing, or the error it gave.</summary>
    public string? NvmlStatus { get; init; }
    /// <summary>Bytes that other processes hold on the device (NVML), when known.</summary>
    public long? OtherProcessesBytes { get; init; }
    /// <summary>Compute processes on the device (NVML), when known.</summary>
    public IReadOnlyList<GpuProcessMemory>? Processes { get; init; }

    /// <summary>The driver version as <c>major.minor</c>, e.g. <c>12.4</c>.</summary>
    public string? DriverVersionText => DriverVersion is int v
        ? (v / 1000).ToString(CultureInfo.InvariantCulture) + "." + (v % 1000 / 10).ToString(CultureInfo.InvariantCulture)
        : null;

    /// <summary>A multi-line human-readable rendering.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append("Accelerator:   ").Append(Kind == AcceleratorKind.Cuda ? "CUDA" : "CPU").Append(" - ").AppendLine(DeviceName);
        sb.Append("CUDA:          ").Append(CudaStatus).Append(" - ").AppendLine(CudaReason);
        if (CudaErrorName is not null)
            sb.Append("CUDA error:    ").Append(CudaErrorName).Append(" (").Append(CudaErrorCode?.ToString(CultureInfo.InvariantCulture)).AppendLine(")");
        if (DriverLibrary is not null)
            sb.Append("Driver:        ").Append(DriverLibrary).Append(DriverVersionText is null ? "" : ", CUDA " + DriverVersionText).AppendLine();
        sb.Append("CUDA devices:  ").AppendLine(CudaDeviceCount.ToString(CultureInfo.InvariantCulture));
        if (DeviceIndex is int i)
            sb.Append("Device index:  ").AppendLine(i.ToString(CultureInfo.InvariantCulture));
        if (ComputeCapability is not null)
            sb.Append("Compute cap.:  ").AppendLine(ComputeCapability);
        if (Kind == AcceleratorKind.Cuda)
            sb.Append("Memory pools:  ").AppendLine(MemoryPoolsSupported ? "supported" : "not supported");
        sb.Append("Memory:        ").Append(ByteSize.Format(FreeBytes)).Append(" free of ").AppendLine(ByteSize.Format(TotalBytes));
        if (NvmlStatus is not null)
            sb.Append("NVML:          ").AppendLine(NvmlStatus);
        if (OtherProcessesBytes is long other)
            sb.Append("Other procs:   ").AppendLine(ByteSize.Format(other));
        return sb.ToString();
    }
}

/// <summary><see cref="DeviceOptions.RequireCuda"/> was set and no CUDA device could be used; carries the report.</summary>
public sealed class CudaUnavailableException : Exception
{
    /// <summary>Creates the exception from the probe's report.</summary>
    public CudaUnavailableException(DeviceReport report)
        : base($"A CUDA device was required but is unavailable: {report.CudaStatus} - {report.CudaReason}")
    {
        Report = report;
    }

    /// <summary>What the probe found.</summary>
    public DeviceReport Report { get; }
}
