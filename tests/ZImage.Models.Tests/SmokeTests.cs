namespace ZImage.Models.Tests;

public class BuildSmokeTests
{
    [Fact]
    public void ByteSizeRoundTrips() => Assert.Equal(24L * 1024 * 1024 * 1024, ZImage.Runtime.Memory.ByteSize.Parse("24GiB"));
}
