using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Budget;

public class MemoryBarTests
{
    private static MemorySnapshot Acceptance()
    {
        var guard = new BudgetGuard(new BudgetOptions
        {
            TotalBytes = ByteSize.Parse("24GiB"), SystemReserveBytes = ByteSize.Parse("2GiB"),
            BaseBytes = ByteSize.Parse("19.3GiB"), InferenceBytes = ByteSize.Parse("2GiB"),
        });
        return guard.Snapshot;
    }

    [Fact]
    public void CellsAddUpToTheWidthInSegmentOrder()
    {
        var parts = MemoryBar.Layout(Acceptance(), 48);

        Assert.Equal(48, parts.Sum(p => p.Cells));
        Assert.Equal([4, 39, 0, 4, 0, 1, 0], parts.Select(p => p.Cells));
    }

    [Fact]
    public void RenderDrawsGlyphsInsideBrackets() =>
        Assert.Equal("[####" + new string('=', 39) + "----~]", MemoryBar.Render(Acceptance(), 48));

    [Fact]
    public void TinyNonEmptyPartsStillGetACell()
    {
        var guard = new BudgetGuard(new BudgetOptions { TotalBytes = 1000 * ByteSize.MiB, SystemReserveBytes = ByteSize.MiB, InferenceBytes = 100 * ByteSize.MiB, BufferBytes = ByteSize.MiB });

        var parts = MemoryBar.Layout(guard.Snapshot, 10);

        Assert.Equal(10, parts.Sum(p => p.Cells));
        Assert.Equal(1, parts.Single(p => p.Part == MemoryBarPart.SystemReserve).Cells);
        Assert.Equal(1, parts.Single(p => p.Part == MemoryBarPart.Buffer).Cells);
    }

    [Fact]
    public void DescribeListsEverySegmentInGiB() =>
        Assert.Equal("Green | total 24.00 GiB | reserve 2.00 GiB | base 19.30 GiB | inference 0.00 GiB / 2.00 GiB | buffer 0.70 GiB | free 0.00 GiB",
            MemoryBar.Describe(Acceptance()));

    [Theory]
    [InlineData(0)]
    [InlineData(MemoryBar.MaxWidth + 1)]
    public void WidthOutsideTheRangeIsRejected(int width) =>
        Assert.Equal(width, Assert.Throws<ArgumentOutOfRangeException>(() => MemoryBar.Render(Acceptance(), width)).ActualValue);
}
