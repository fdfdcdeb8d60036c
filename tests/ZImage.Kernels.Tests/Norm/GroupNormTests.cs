using ZImage.Kernels.Tests.Infrastructure;
using static ZImage.Kernels.Tests.Infrastructure.NormConvTestData;

namespace ZImage.Kernels.Tests.Norm;

[Collection(NormConvCollection.Name)]
public sealed class GroupNormTests(NormConvFixture fx)
{
    public static TheoryData<KernelBackend, int, int, int, bool> Shapes()
    {
        // (channels, groups, hw): channels not a multiple of 32, hw = 1, 3·5, 8·8.
        TheoryData<int, int, int, bool> Shared() => new()
        {
            { 6, 3, 1, false },
            { 12, 4, 15, true },
            { 7, 7, 25, true },
            { 5, 1, 9, true },
        };

        // Many groups: cheap on the portable variant, few threads per group on the simulated GPU variant.
        var portable = Shared();
        portable.Add(40, 8, 64, false);
        portable.Add(96, 32, 33, true);
        var gpu = Shared();
        gpu.Add(40, 8, 9, false);
        return KernelBackends.Matrix(portable, gpu);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GroupNormMatchesReference(KernelBackend backend, int channels, int groups, int hw, bool silu)
    {
        var acc = fx.For(backend).Accelerator;
        int n = channels * hw;
        var x = Random(channels * 13 + hw, n, 2f);
        for (int i = 0; i < n; i++) x[i] += 1.5f;
        var gamma = Random(channels + 1, channels);
        var beta = Random(channels + 2, channels);
        var expected = new double[n];
        int cpg = channels / groups, count = cpg * hw;
        for (int g = 0; g < groups; g++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < count; i++) mean += x[g * count + i];
            mean /= count;
            for (int i = 0; i < count; i++) var += Math.Pow(x[g * count + i] - mean, 2);
            double inv = 1 / Math.Sqrt(var / count + 1e-6);
            for (int i = 0; i < count; i++)
            {
                int ch = g * cpg + i / hw;
                double v = (x[g * count + i] - mean) * inv * gamma[ch] + beta[ch];
                expected[g * count + i] = silu ? Silu(v) : v;
            }
        }

        using var bx = Upload(acc, x);
        using var bg = Upload(acc, gamma);
        using var bb = Upload(acc, beta);
        using var by = Upload(acc, Poison(n));
        fx.Norm(backend).GroupNorm(bx.View, groups, bg.View, bb.View, 1e-6f, silu, by.View, channels, hw);
        AssertClose(expected, Download(acc, by), atol: 1e-4, rtol: 1e-4);

        // In place gives the same result.
        fx.Norm(backend).GroupNorm(bx.View, groups, bg.View, bb.View, 1e-6f, silu, bx.View, channels, hw);
        AssertClose(expected, Download(acc, bx), atol: 1e-4, rtol: 1e-4, what: "in place");
    }

    [Theory]
    [NotPerBackend("argument validation throws before any launch")]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(13)]
    public void RejectsGroupsThatDoNotDivideChannels(int groups)
    {
        using var b = fx.Cpu.Allocate1D<float>(12 * 4);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            fx.Norm(false).GroupNorm(b.View, groups, b.View, b.View, 1e-6f, false, b.View, 12, 4));
        Assert.Equal("groups", ex.ParamName);
    }
}
