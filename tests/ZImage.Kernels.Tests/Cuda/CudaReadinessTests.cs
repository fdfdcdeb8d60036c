using ZImage.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Cuda;

/// <summary>What keeps every kernel compilable for CUDA: one context factory and an accurate kernel-side tanh.</summary>
public sealed class CudaReadinessTests
{
    [Fact]
    public void KernelTanhStaysWithinTwoMillionthsOfTheExactValue()
    {
        double worst = 0;
        for (int i = -200_000; i <= 200_000; i++)
        {
            float x = i * 1e-4f;   // [-20, 20], dense around the series/exp switch at 0.125 and saturation at 9
            double exact = Math.Tanh(x);
            double got = KernelMath.Tanh(x);
            double err = exact == 0 ? Math.Abs(got) : Math.Abs(got - exact) / Math.Abs(exact);
            worst = Math.Max(worst, err);
        }

        Assert.True(worst < 2e-6, $"worst relative error {worst:E3}");
        Assert.Equal(1f, KernelMath.Tanh(float.PositiveInfinity));
        Assert.Equal(-1f, KernelMath.Tanh(float.NegativeInfinity));
        Assert.True(float.IsNaN(KernelMath.Tanh(float.NaN)));
        Assert.Equal(1e-30f, KernelMath.Tanh(1e-30f));
    }

    [Fact]
    public void NoSourceFileCreatesAnIlgpuContextOutsideTheSharedFactory()
    {
        var offenders = new[] { "src", "tests", "bench", "tools" }
            .Select(d => Path.Combine(FixturePaths.RepoRoot, d))
            .Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.EndsWith("IlgpuContexts.cs", StringComparison.Ordinal)
                        && !f.EndsWith(nameof(CudaReadinessTests) + ".cs", StringComparison.Ordinal))
            .Where(f => File.ReadAllText(f).Contains("Context.Create(", StringComparison.Ordinal))
            .ToList();
        Assert.True(offenders.Count == 0, "Create ILGPU contexts through ZImage.Kernels.IlgpuContexts: " + string.Join(", ", offenders));
    }
}
