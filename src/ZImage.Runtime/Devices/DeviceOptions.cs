using ILGPU.Runtime.CPU;

namespace ZImage.Runtime.Devices;

/// <summary>How <see cref="DeviceSelector"/> picks the accelerator.</summary>
public sealed class DeviceOptions
{
    /// <summary>Use ILGPU's CPU accelerator even when a CUDA device is present (tests, debugging).</summary>
    public bool ForceCpu { get; set; }

    /// <summary>Throw <see cref="CudaUnavailableException"/> instead of falling back to the CPU accelerator.</summary>
    public bool RequireCuda { get; set; }

    /// <summary>The CUDA device ordinal to use (default 0).</summary>
    public int DeviceIndex { get; set; }

    /// <summary>Driver library names to try, in order; <see langword="null"/> means <c>CudaDriver.DefaultLibraryNames</c>.</summary>
    public IReadOnlyList<string>? CudaLibraryNames { get; set; }

    /// <summary>Whether to ask NVML for the memory other processes use (skipped silently when NVML is absent).</summary>
    public bool UseNvml { get; set; } = true;

    /// <summary>NVML library names to try; <see langword="null"/> means <c>NvmlLibrary.DefaultLibraryNames</c>.</summary>
    public IReadOnlyList<string>? NvmlLibraryNames { get; set; }

    /// <summary>How the CPU accelerator runs kernels (Parallel measured fastest here, see ilgpu-notes.md).</summary>
    public CPUAcceleratorMode CpuMode { get; set; } = CPUAcceleratorMode.Parallel;

    /// <summary>The simulated CPU device; <see langword="null"/> means <see cref="CPUDevice.Default"/> (16 threads per group).</summary>
    public CPUDevice? CpuDevice { get; set; }

    /// <summary>
    /// The memory the CPU accelerator pretends to have (its "device total"); <see langword="null"/> means the memory
    /// the GC says is available to the process.
    /// </summary>
    public long? CpuCapacityBytes { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad value and its allowed range.</summary>
    public void Validate()
    {
        if (DeviceIndex < 0)
            throw new ArgumentOutOfRangeException(nameof(DeviceIndex), DeviceIndex, "The CUDA device index must be 0 or more.");
        if (CpuCapacityBytes is <= 0)
            throw new ArgumentOutOfRangeException(nameof(CpuCapacityBytes), CpuCapacityBytes, "The CPU capacity must be more than 0 bytes (or null to detect).");
        if (!Enum.IsDefined(CpuMode))
            throw new ArgumentOutOfRangeException(nameof(CpuMode), CpuMode, "Allowed: Auto, Sequential, Parallel.");
        if (CudaLibraryNames is { Count: 0 } || CudaLibraryNames?.Any(string.IsNullOrWhiteSpace) == true)
            throw new ArgumentOutOfRangeException(nameof(CudaLibraryNames), "The CUDA library list must be null or hold at least one non-blank name.");
        if (ForceCpu && RequireCuda)
            throw new ArgumentOutOfRangeException(nameof(RequireCuda), "ForceCpu and RequireCuda cannot both be set.");
    }
}
