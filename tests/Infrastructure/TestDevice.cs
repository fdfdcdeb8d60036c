using ILGPU.Runtime.Cuda;
using ZImage.Kernels;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// Where the model and pipeline parity tests run: <c>ZIMAGE_TEST_DEVICE=cuda</c> points them at the first CUDA device
/// (GPU kernel variants, fp32 and bf16 cases alike); unset or <c>cpu</c> keeps ILGPU's CPU accelerator. Asking for
/// CUDA where ILGPU finds none fails the tests with that message: nothing is skipped or silently run on the CPU.
/// </summary>
public static class TestDevice
{
    /// <summary>The environment variable.</summary>
    public const string Variable = "ZIMAGE_TEST_DEVICE";

    private static readonly Lazy<bool> s_useCuda = new(() => Resolve(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>Whether the tests are pointed at CUDA (throws when the variable has another value, or CUDA is missing).</summary>
    public static bool UseCuda => s_useCuda.Value;

    /// <summary>Whether <paramref name="setting"/> (the variable's value) selects CUDA; throws on other values or a missing device.</summary>
    public static bool Resolve(string? setting)
    {
        string? value = setting?.Trim();
        if (string.IsNullOrEmpty(value) || value.Equals("cpu", StringComparison.OrdinalIgnoreCase))
            return false;
        if (!value.Equals("cuda", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"{Variable}='{value}' is not valid; allowed values are 'cpu' (the default) and 'cuda'.");
        using var context = IlgpuContexts.CreateCudaAndCpu();
        if (context.GetCudaDevices().Count == 0)
            throw new InvalidOperationException($"{Variable}=cuda but ILGPU finds no CUDA device on this machine (driver missing or no GPU); unset it to run on the CPU.");
        return true;
    }
}
