using ZImage.Kernels.Tests.Infrastructure;

using ILGPU.Runtime;

namespace ZImage.Kernels.Tests.Gemm;

/// <summary>Bad GEMM shapes and short views fail fast with typed exceptions that name the offending value.</summary>
[Collection(GemmAcceleratorCollection.Name)]
public sealed class GemmArgumentTests(GemmAcceleratorFixture fx)
{
    /// <summary>Non-positive dimensions are rejected with the dimension's name.</summary>
    [Theory]
    [NotPerBackend("argument validation throws before any launch")]
    [InlineData(0, 2, 2, "m")]
    [InlineData(2, 0, 2, "n")]
    [InlineData(2, 2, -1, "k")]
    public void NonPositiveDimensionThrowsOutOfRange(int m, int n, int k, string name)
    {
        GemmKernels gemm = fx.Gemm(KernelVariant.Portable);
        using var buf = fx.PortableAccelerator.Allocate1D<float>(16);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => gemm.Linear(buf.View, buf.View, buf.View, m, n, k));
        Assert.Equal(name, ex.ParamName);
    }

    /// <summary>A weight view shorter than N·K is rejected before any launch.</summary>
    [Fact]
    public void ShortWeightViewThrows()
    {
        GemmKernels gemm = fx.Gemm(KernelVariant.Portable);
        using var x = fx.PortableAccelerator.Allocate1D<float>(6);
        using var w = fx.PortableAccelerator.Allocate1D<ushort>(5);
        using var y = fx.PortableAccelerator.Allocate1D<float>(4);
        var ex = Assert.Throws<ArgumentException>(() => gemm.Linear(x.View, w.View, y.View, 2, 2, 3));
        Assert.Equal("w", ex.ParamName);
        Assert.Contains("6", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>A bias shorter than N is rejected.</summary>
    [Fact]
    public void ShortBiasThrows()
    {
        GemmKernels gemm = fx.Gemm(KernelVariant.Portable);
        using var x = fx.PortableAccelerator.Allocate1D<float>(6);
        using var w = fx.PortableAccelerator.Allocate1D<float>(9);
        using var b = fx.PortableAccelerator.Allocate1D<float>(2);
        using var y = fx.PortableAccelerator.Allocate1D<float>(6);
        var ex = Assert.Throws<ArgumentException>(() => gemm.Linear(x.View, w.View, b.View, y.View, 2, 3, 3));
        Assert.Equal("bias", ex.ParamName);
    }
}
