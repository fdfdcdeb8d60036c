using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Budget;

public class AdmissionTests
{
    private const long GiB = ByteSize.GiB;

    private static BudgetGuard Guard(long inference = 2 * GiB) =>
        new(new BudgetOptions { TotalBytes = 16 * GiB, SystemReserveBytes = GiB, BaseBytes = 8 * GiB, InferenceBytes = inference });

    [Fact]
    public void ExactFitIsAdmitted()
    {
        var result = Guard().TryAdmit(2 * GiB);

        Assert.True(result.Admitted);
        Assert.Equal(0, result.OverByBytes);
        Assert.Equal(0, result.AvailableBytes - result.RequestedBytes);
    }

    [Fact]
    public void OneByteOverIsRefusedByOneByte()
    {
        var result = Guard().TryAdmit(2 * GiB + 1);

        Assert.False(result.Admitted);
        Assert.Equal(1, result.OverByBytes);
        Assert.Equal(2 * GiB, result.LimitBytes);
    }

    [Fact]
    public void ZeroBytesIsAdmittedEvenWithAnEmptySegment() => Assert.True(Guard(inference: 0).TryAdmit(0).Admitted);

    [Fact]
    public void NegativeRequestNamesTheValue()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Guard().TryAdmit(-1));
        Assert.Equal(-1L, ex.ActualValue);
    }

    [Fact]
    public void WorkspaceInUseCountsAgainstAdmission()
    {
        var guard = Guard();
        using var held = new BudgetedAllocator(new RecordingAllocator(), guard).Allocate(GiB + GiB / 2, AllocationTags.Transformer);

        var result = guard.TryAdmit(GiB);

        Assert.False(result.Admitted);
        Assert.Equal(GiB / 2, result.OverByBytes);
        Assert.Equal(GiB + GiB / 2, result.InUseBytes);
        Assert.Equal("needs 0.50 GiB more than the 2.00 GiB inference segment has free (1.50 GiB in use)", result.Message);
    }

    [Fact]
    public void EnsureAdmittedThrowsTheTypedException()
    {
        var ex = Assert.Throws<BudgetExceededException>(() => Guard().EnsureAdmitted(3 * GiB, "vae"));

        Assert.Equal(GiB, ex.OverByBytes);
        Assert.Equal("vae", ex.Tag);
        Assert.Contains("needs 1.00 GiB more", ex.Message);
    }

    [Fact]
    public void AdmittedMessageSaysWhatIsLeft() =>
        Assert.Equal("fits: 1.50 GiB of the 2.00 GiB inference segment (0.50 GiB left)", Guard().TryAdmit(GiB + GiB / 2).Message);
}
