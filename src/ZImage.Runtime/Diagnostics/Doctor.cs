using System.Diagnostics;
using ZImage.Kernels;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Devices;

namespace ZImage.Runtime.Diagnostics;

/// <summary>The doctor's <c>device</c> section.</summary>
/// <param name="Kind"><c>cuda</c> or <c>cpu</c>.</param>
/// <param name="Name">The accelerator's name.</param>
/// <param name="ComputeCapability">e.g. <c>9.0</c>; null on the CPU.</param>
/// <param name="TotalBytes">Device memory (the configured capacity on the CPU).</param>
/// <param name="FreeBytes">Free device memory now.</param>
/// <param name="DriverVersion">The CUDA driver version, e.g. <c>12.8</c>; null without a driver.</param>
/// <param name="CudaStatus">What the CUDA probe found.</param>
/// <param name="CudaReason">Why CUDA is (not) used.</param>
/// <param name="Ok">False only when CUDA was required and is not there.</param>
internal sealed record DoctorDevice(string Kind, string Name, string? ComputeCapability, long TotalBytes, long FreeBytes,
    string? DriverVersion, string CudaStatus, string CudaReason, bool Ok);

/// <summary>The doctor's <c>kernels</c> and <c>throughput</c> sections for one device.</summary>
/// <param name="Shapes">Which shape set ran (<c>gpu</c>: real model shapes; <c>cpu</c>: small).</param>
/// <param name="Seed">The seed of this run's random inputs (fresh every run).</param>
/// <param name="Checks">One row per check.</param>
/// <param name="Throughput">GEMM and attention throughput at the same shapes.</param>
/// <param name="Seconds">Wall time of the section, including kernel compilation.</param>
internal sealed record DoctorKernels(string Shapes, int Seed, IReadOnlyList<DoctorCheck> Checks, IReadOnlyList<DoctorThroughput> Throughput, double Seconds)
{
    /// <summary>Whether every check passed.</summary>
    public bool Ok => Checks.Count > 0 && Checks.All(c => c.Ok);
}

/// <summary>
/// The runtime half of <c>zimage doctor</c>: describes the selected device and runs every kernel family there against
/// float64 host references (real Z-Image shapes on a GPU, small ones on the CPU accelerator).
/// </summary>
internal static class Doctor
{
    /// <summary>The device section of <paramref name="device"/>.</summary>
    /// <param name="device">The selected device.</param>
    /// <param name="requireCuda">Whether a CPU fallback counts as a failure.</param>
    public static DoctorDevice DescribeDevice(ComputeDevice device, bool requireCuda)
    {
        ArgumentNullException.ThrowIfNull(device);
        var r = device.Report;
        var memory = device.GetMemoryInfo();
        return new DoctorDevice(device.IsCuda ? "cuda" : "cpu", r.DeviceName, r.ComputeCapability, memory.TotalBytes, memory.FreeBytes,
            r.DriverVersionText, r.CudaStatus.ToString(), r.CudaReason, device.IsCuda || !requireCuda);
    }

    /// <summary>Compiles every kernel family on <paramref name="device"/> and checks each against its host reference.</summary>
    /// <param name="device">The selected device.</param>
    /// <param name="shapes">The shapes; <see cref="DoctorShapes.Gpu"/> on CUDA and <see cref="DoctorShapes.Cpu"/> otherwise when null.</param>
    /// <param name="seed">Seed of the random inputs; a fresh one when null.</param>
    public static DoctorKernels CheckKernels(ComputeDevice device, DoctorShapes? shapes = null, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        var sw = Stopwatch.StartNew();
        shapes ??= DoctorShapes.For(device.IsCuda);
        int s = seed ?? System.Random.Shared.Next();
        using var ops = new KernelComputeOps(new KernelContext(device.Accelerator));
        var checks = new DoctorKernelChecks(ops, shapes, s);
        var rows = checks.RunAll();
        return new DoctorKernels(ReferenceEquals(shapes, DoctorShapes.Gpu) ? "gpu" : ReferenceEquals(shapes, DoctorShapes.Cpu) ? "cpu" : "custom",
            s, rows, checks.Throughput, sw.Elapsed.TotalSeconds);
    }
}
