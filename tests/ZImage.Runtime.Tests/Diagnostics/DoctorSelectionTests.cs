using ZImage.Runtime.Compute;
using ZImage.Runtime.Diagnostics;
using ZImage.Runtime.Models.Configuration;

namespace ZImage.Runtime.Tests.Diagnostics;

/// <summary>What the doctor runs where: real model shapes and the real Turbo config on CUDA, small ones on the CPU (checked without a GPU).</summary>
public sealed class DoctorSelectionTests
{
    [Fact]
    public void OnCudaTheKernelChecksRunAtTheRealModelShapesAndOnTheCpuAtSmallOnes()
    {
        var gpu = DoctorShapes.For(isCuda: true);
        Assert.Same(DoctorShapes.Gpu, gpu);
        // GEMM 4128x3840 -> 10240 (bf16 weights), attention S=4128 with 30 heads of 128, conv 3x3 512 -> 512 at 128².
        Assert.Equal((4128, 3840, 10240), (gpu.M, gpu.K, gpu.N));
        Assert.Equal((4128, 30, 128), (gpu.Seq, gpu.Heads, gpu.HeadDim));
        Assert.Equal((512, 128), (gpu.ConvChannels, gpu.ConvSize));
        Assert.True(gpu.Samples > 0, "real shapes compare a sample of the outputs");
        var turbo = ZImageConfig.Turbo.Transformer;
        Assert.Equal(turbo.Dim, gpu.K);
        Assert.Equal(turbo.NHeads, gpu.Heads);
        Assert.Equal(turbo.Dim / turbo.NHeads, gpu.HeadDim);

        var cpu = DoctorShapes.For(isCuda: false);
        Assert.Same(DoctorShapes.Cpu, cpu);
        Assert.True((long)cpu.M * cpu.K * cpu.N < 1_000_000 && cpu.Seq < 100 && cpu.ConvChannels <= 16, "the CPU accelerator gets small shapes");
        Assert.Equal(0, cpu.Samples);
    }

    [Fact]
    public void OnCudaTheGenerationRunsTheRealTurboConfigWithBf16RandomWeightsAt512And1024()
    {
        var gpu = DoctorGenerationPlan.For(isCuda: true);
        Assert.Same(ZImageConfig.Turbo, gpu.Config);
        Assert.Equal(TensorDType.BF16, gpu.WeightDType);
        Assert.Equal([512, 1024], gpu.Sizes);

        var cpu = DoctorGenerationPlan.For(isCuda: false);
        Assert.Null(cpu.Config); // the tiny demo config
        Assert.Equal([64], cpu.Sizes);
    }

    [Fact]
    public async Task ACpuGenerationChecksTheAllocatorPeaksAgainstThePlanAndSaysWhyDeviceMemoryIsNotCompared()
    {
        var plan = DoctorGenerationPlan.Cpu with { Sizes = [16], Steps = 1 };
        var section = await DoctorGenerationCheck.RunAsync(plan, forceCpu: true, deviceIndex: 0);

        var run = Assert.Single(section.Runs);
        Assert.True(run.Ok, run.Detail);
        Assert.True(section.Ok);
        Assert.Contains(run.Stages, s => s.Name.Contains("vae", StringComparison.Ordinal));
        Assert.All(run.Stages, s => Assert.True(s.Ok && s.MeasuredPeakBytes <= s.PlannedPeakBytes && s.PlannedPeakBytes > 0, s.Name));
        Assert.Null(run.DeviceUsedPeakBytes);
        Assert.Null(run.DeviceUsedWithinCarveUp);
        Assert.Equal(DoctorGenerationCheck.CpuMemoryNote, run.DeviceMemoryNote);
        Assert.True(run.CarveUpBytes > 0);
    }

    [Fact]
    public async Task WithoutFixturesTheParitySectionSaysItDidNotRunAndWhy()
    {
        string missing = Path.Combine(Path.GetTempPath(), "zimage-no-fixtures-" + Guid.NewGuid().ToString("N"));
        Assert.Null(DoctorParityCheck.FindFixtures(missing, out string looked));
        Assert.Contains(missing, looked, StringComparison.Ordinal);

        var parity = await DoctorParityCheck.RunAsync(null, forceCpu: true, deviceIndex: 0, "fixtures not found: " + looked);
        Assert.False(parity.Ran);
        Assert.True(parity.Ok);
        Assert.Empty(parity.Cases);
        Assert.Contains(missing, parity.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void TheFixturesBesideTheCheckoutAreFound()
    {
        string? found = DoctorParityCheck.FindFixtures(null, out _);
        Assert.NotNull(found);
        Assert.Equal(Path.GetFullPath(global::ZImage.Tests.Infrastructure.FixturePaths.FixturesDir).TrimEnd('/'), Path.GetFullPath(found).TrimEnd('/'));
    }
}
