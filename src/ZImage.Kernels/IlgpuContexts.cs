using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace ZImage.Kernels;

/// <summary>
/// The one place that creates ILGPU contexts for ZImage: the runtime's device selection, the tests, the benchmarks and
/// the offline PTX compiler all go through it, so every context has the same settings and every kernel that compiles
/// for one compiles for all of them.
/// </summary>
/// <remarks>
/// The shared setting is <c>EnableAlgorithms()</c> (package
/// ILGPU.Algorithms): without it the PTX backend has no implementation of <c>MathF.Exp</c>, so attention, SiLU,
/// SwiGLU and group norm cannot be compiled for CUDA. With it <c>MathF.Exp</c> becomes <c>ex2.approx</c> (relative
/// error about 2^-22 plus the rounding of <c>x·log2 e</c>, well inside the parity tolerances). <c>MathF.Tanh</c>
/// would become <c>tanh.approx.f32</c> (about 5e-4 relative error), which is why the kernels call
/// <see cref="KernelMath.Tanh"/> instead.
/// </remarks>
public static class IlgpuContexts
{
    /// <summary>Applies the settings every ZImage context shares to <paramref name="builder"/> (after its backends).</summary>
    /// <param name="builder">The builder whose backends are already registered.</param>
    /// <returns>The same builder.</returns>
    public static Context.Builder WithZImageSettings(this Context.Builder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.EnableAlgorithms();
    }

    /// <summary>A context with the CPU backend only.</summary>
    /// <param name="cpuDevice">The simulated CPU device; <see cref="CPUDevice.Default"/> when null.</param>
    public static Context CreateCpu(CPUDevice? cpuDevice = null) =>
        Context.Create(b => b.CPU(cpuDevice ?? CPUDevice.Default).WithZImageSettings());

    /// <summary>
    /// The context the runtime creates when it probes for a GPU: CUDA plus the CPU backend. On a machine without CUDA
    /// the CUDA backend registers no device but the context still compiles PTX (what <c>zimage kernels --ptx</c> uses).
    /// </summary>
    /// <param name="cpuDevice">The simulated CPU device; <see cref="CPUDevice.Default"/> when null.</param>
    public static Context CreateCudaAndCpu(CPUDevice? cpuDevice = null) =>
        Context.Create(b => b.Cuda().CPU(cpuDevice ?? CPUDevice.Default).WithZImageSettings());

    /// <summary>A context registering every backend ILGPU finds (what the kernel tests' backend matrix uses).</summary>
    public static Context CreateAllBackends() =>
        Context.Create(b => b.Default().WithZImageSettings());
}
