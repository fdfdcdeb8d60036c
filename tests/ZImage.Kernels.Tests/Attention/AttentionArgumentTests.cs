using ILGPU.Runtime;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Attention;

/// <summary>Inconsistent attention shapes fail with typed exceptions naming the bad value.</summary>
[Collection(GemmAcceleratorCollection.Name)]
public sealed class AttentionArgumentTests(GemmAcceleratorFixture fx)
{
    /// <summary>Query heads that are not a multiple of the KV heads are rejected.</summary>
    [Fact]
    public void QueryHeadsNotMultipleOfKvHeadsThrows()
    {
        using var buf = fx.PortableAccelerator.Allocate1D<float>(1024);
        var ex = Assert.Throws<ArgumentException>(() =>
            fx.Attention(KernelVariant.Portable).Forward(buf.View, buf.View, buf.View, buf.View, 2, 2, 3, 2, 4, 0.5f, false));
        Assert.Equal("hq", ex.ParamName);
    }

    /// <summary>A causal mask over different query and key lengths is rejected.</summary>
    [Fact]
    public void CausalWithDifferentLengthsThrows()
    {
        using var buf = fx.PortableAccelerator.Allocate1D<float>(1024);
        var ex = Assert.Throws<ArgumentException>(() =>
            fx.Attention(KernelVariant.Portable).Forward(buf.View, buf.View, buf.View, buf.View, 2, 3, 1, 1, 4, 0.5f, true));
        Assert.Equal("sk", ex.ParamName);
    }

    /// <summary>An output view shorter than Sq·Hq·Dh is rejected.</summary>
    [Fact]
    public void ShortOutputThrows()
    {
        using var buf = fx.PortableAccelerator.Allocate1D<float>(64);
        using var o = fx.PortableAccelerator.Allocate1D<float>(63);
        var ex = Assert.Throws<ArgumentException>(() =>
            fx.Attention(KernelVariant.Portable).Forward(buf.View, buf.View, buf.View, o.View, 4, 4, 2, 2, 8, 0.5f, false));
        Assert.Equal("o", ex.ParamName);
    }
}
