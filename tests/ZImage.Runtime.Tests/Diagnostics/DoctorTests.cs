using ZImage.Runtime.Devices;
using ZImage.Runtime.Diagnostics;

namespace ZImage.Runtime.Tests.Diagnostics;

/// <summary>The runtime half of <c>zimage doctor</c> on ILGPU's CPU accelerator (what CI can run).</summary>
public sealed class DoctorTests
{
    [Fact]
    public void EveryKernelCheckPassesOnTheCpuAcceleratorWithFreshInputs()
    {
        using var device = DeviceSelector.Select(new DeviceOptions { ForceCpu = true });
        var section = Doctor.DescribeDevice(device, requireCuda: false);
        var kernels = Doctor.CheckKernels(device);

        Assert.Equal("cpu", section.Kind);
        Assert.True(section.Ok);
        Assert.False(Doctor.DescribeDevice(device, requireCuda: true).Ok);
        Assert.Equal("cpu", kernels.Shapes);
        Assert.All(kernels.Checks, c => Assert.True(c.Ok, $"{c.Name} {c.Shape}: {c.Detail} (error {c.MaxError:E2})"));
        Assert.Equal(["gemm_f32", "gemm_bf16", "attention", "conv3x3_bf16", "rms_norm", "group_norm_silu", "silu_tanh_swiglu", "transpose"],
            kernels.Checks.Select(c => c.Name));
        Assert.All(kernels.Checks, c => Assert.True(c.Checked > 0, c.Name));
        Assert.Equal(["gemm_bf16", "attention"], kernels.Throughput.Select(t => t.Name));
        Assert.All(kernels.Throughput, t => Assert.True(t.Tflops > 0 && double.IsFinite(t.Tflops)));
    }

    [Fact]
    public void AnUnwrittenOutputOrALargeErrorFailsTheCheck()
    {
        var rng = new Random(1);
        float[] exact = [1f, 2f, 3f, 4f];
        Assert.True(DoctorKernelChecks.Compare("c", "4", exact, i => i + 1, 1e-4, 0, 0, rng).Ok);

        var poisoned = DoctorKernelChecks.Compare("c", "4", [1f, float.NaN, 3f, 4f], i => i + 1, 1e-4, 0, 0, rng);
        Assert.False(poisoned.Ok);
        Assert.Contains("not finite", poisoned.Detail, StringComparison.Ordinal);

        var off = DoctorKernelChecks.Compare("c", "4", [1f, 2f, 3f, 4.01f], i => i + 1, 1e-4, 0, 0, rng);
        Assert.False(off.Ok);
        Assert.InRange(off.MaxError, 2e-3, 3e-3);   // 0.01 / max |ref| 4
    }
}
