using ZImage.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Diagnostics;

/// <summary>ZIMAGE_TEST_DEVICE: cpu by default, cuda on request, anything else a clear error.</summary>
public sealed class TestDeviceTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(" CPU ")]
    public void UnsetOrCpuKeepsTheCpuAccelerator(string? value) => Assert.False(TestDevice.Resolve(value));

    [Fact]
    public void AnUnknownDeviceNamesTheValueAndTheAllowedOnes()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => TestDevice.Resolve("gpu"));
        Assert.Contains("'gpu'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'cuda'", ex.Message, StringComparison.Ordinal);
    }
}
