using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Budget;

public class BudgetLayoutTests
{
    private const long GiB = ByteSize.GiB;

    [Fact]
    public void SegmentsThatDoNotFitFailFastWithTheBreakdown()
    {
        var options = new BudgetOptions { TotalBytes = 24 * GiB, SystemReserveBytes = 2 * GiB, BaseBytes = ByteSize.Parse("19.3GiB"), InferenceBytes = 3 * GiB };

        var ex = Assert.Throws<BudgetLayoutException>(() => new BudgetGuard(options));

        Assert.Equal(ByteSize.Parse("19.3GiB") + 5 * GiB + BudgetOptions.DefaultBufferBytes - 24 * GiB, ex.OverByBytes);
        Assert.Contains("system reserve 2.00 GiB + base 19.30 GiB + inference 3.00 GiB + buffer 0.70 GiB = 25.00 GiB > total 24.00 GiB", ex.Message);
        Assert.Contains("over by 1.00 GiB", ex.Message);
    }

    [Fact]
    public void ExactFitStartsWithNoFreeMemory()
    {
        var guard = new BudgetGuard(new BudgetOptions { TotalBytes = 10 * GiB, SystemReserveBytes = GiB, BaseBytes = 5 * GiB, InferenceBytes = 3 * GiB, BufferBytes = GiB });

        Assert.Equal(0, guard.Snapshot.FreeBytes);
    }

    [Fact]
    public void SetBaseThatBreaksTheLayoutThrowsAndKeepsTheOldBase()
    {
        var guard = new BudgetGuard(new BudgetOptions { TotalBytes = 10 * GiB, SystemReserveBytes = GiB, InferenceBytes = 2 * GiB, BufferBytes = GiB });
        guard.SetBase(4 * GiB);

        Assert.Throws<BudgetLayoutException>(() => guard.SetBase(6 * GiB + 1));

        Assert.Equal(4 * GiB, guard.BaseBytes);
        guard.SetBase(6 * GiB);
        Assert.Equal(6 * GiB, guard.BaseBytes);
    }

    [Fact]
    public void InferenceLimitThatBreaksTheLayoutThrows()
    {
        var guard = new BudgetGuard(new BudgetOptions { TotalBytes = 10 * GiB, SystemReserveBytes = GiB, BaseBytes = 6 * GiB, BufferBytes = GiB });

        var ex = Assert.Throws<BudgetLayoutException>(() => guard.SetInferenceLimit(3 * GiB));

        Assert.Equal(GiB, ex.OverByBytes);
        Assert.Equal(0, guard.InferenceLimitBytes);
    }

    [Fact]
    public void ReserveIsDetectedAsTotalMinusFree()
    {
        var guard = new BudgetGuard(new BudgetOptions(), new DeviceMemoryInfo(8 * GiB, 7 * GiB));

        Assert.Equal(8 * GiB, guard.TotalBytes);
        Assert.Equal(GiB, guard.SystemReserveBytes);
    }

    [Fact]
    public void MeasureBaseSubtractsTheReserveFromDeviceUse()
    {
        var guard = new BudgetGuard(new BudgetOptions { InferenceBytes = GiB }, new DeviceMemoryInfo(8 * GiB, 7 * GiB));

        long measured = guard.MeasureBase(new DeviceMemoryInfo(8 * GiB, 3 * GiB));

        Assert.Equal(4 * GiB, measured);
        Assert.Equal(4 * GiB, guard.Snapshot.BaseBytes);
    }

    [Fact]
    public void TotalNeitherConfiguredNorDetectedIsAnArgumentError()
    {
        var ex = Assert.Throws<ArgumentException>(() => new BudgetGuard(new BudgetOptions { SystemReserveBytes = 0 }));
        Assert.Contains("TotalBytes", ex.Message);
    }

    [Theory]
    [InlineData(nameof(BudgetOptions.TotalBytes))]
    [InlineData(nameof(BudgetOptions.SystemReserveBytes))]
    [InlineData(nameof(BudgetOptions.BaseBytes))]
    [InlineData(nameof(BudgetOptions.InferenceBytes))]
    [InlineData(nameof(BudgetOptions.BufferBytes))]
    public void NegativeOptionIsRejectedByName(string property)
    {
        var options = new BudgetOptions();
        typeof(BudgetOptions).GetProperty(property)!.SetValue(options, property == nameof(BudgetOptions.TotalBytes) ? 0L : -1L);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);

        Assert.Equal(property, ex.ParamName);
        Assert.False(new BudgetOptionsValidator().Validate(null, options).Succeeded);
    }

    [Fact]
    public void ValidOptionsPassTheOptionsValidator() =>
        Assert.True(new BudgetOptionsValidator().Validate(null, new BudgetOptions { InferenceBytes = GiB }).Succeeded);

    [Fact]
    public void DefaultBufferIsPointSevenGiB() => Assert.Equal(751_619_277L, BudgetOptions.DefaultBufferBytes);
}
