using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Budget;

/// <summary>The scenario: 24 GiB device, 2.0 GiB system reserve, 19.3 GiB base, 2.0 GiB inference, 0.7 GiB buffer.</summary>
public class AcceptanceScenarioTests
{
    private static readonly long Total = ByteSize.Parse("24GiB");
    private static readonly long Reserve = ByteSize.Parse("2.0GiB");
    private static readonly long Base = ByteSize.Parse("19.3GiB");
    private static readonly long Inference = ByteSize.Parse("2.0GiB");

    private static BudgetGuard StartOnSimulatedDevice(FakeMemoryInfoBackend device)
    {
        // The device shows 2.0 GiB in use before the model loads: that becomes the detected system reserve.
        var guard = BudgetGuard.Start(new BudgetOptions { InferenceBytes = Inference }, device);
        device.Info = new DeviceMemoryInfo(Total, Total - Reserve - Base);
        guard.MeasureBase();
        return guard;
    }

    private static string Gib(long bytes) => (bytes / (double)ByteSize.GiB).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void SnapshotShowsBaseInferenceAndBufferExactly()
    {
        var device = new FakeMemoryInfoBackend(Total, Total - Reserve);
        var guard = StartOnSimulatedDevice(device);

        var s = guard.Snapshot;

        Assert.Equal(Total, s.TotalBytes);
        Assert.Equal(Reserve, s.SystemReserveBytes);
        Assert.Equal(Base, s.BaseBytes);
        Assert.Equal(Inference, s.InferenceLimitBytes);
        Assert.Equal(BudgetOptions.DefaultBufferBytes, s.BufferBytes);
        Assert.Equal(0, s.FreeBytes);
        Assert.Equal(MemoryState.Green, s.State);
        Assert.Equal("19.30", Gib(s.BaseBytes));
        Assert.Equal("2.00", Gib(s.InferenceLimitBytes));
        Assert.Equal("0.70", Gib(s.BufferBytes));
        Assert.Contains("base 19.30 GiB | inference 0.00 GiB / 2.00 GiB | buffer 0.70 GiB", MemoryBar.Describe(s));
        Assert.Equal(1.0, s.SystemReserveFraction + s.BaseFraction + s.InferenceLimitFraction + s.BufferFraction + s.FreeFraction, 12);
        Assert.Equal(19.3 / 24, s.BaseFraction, 9);
    }

    [Fact]
    public void WorkspaceOf3Point2GiBIsRefusedWithTheShortfall()
    {
        var guard = StartOnSimulatedDevice(new FakeMemoryInfoBackend(Total, Total - Reserve));

        var result = guard.TryAdmit(ByteSize.Parse("3.2GiB"));

        Assert.False(result.Admitted);
        Assert.Equal(ByteSize.Parse("3.2GiB") - Inference, result.OverByBytes);
        Assert.Equal("needs 1.20 GiB more than the 2.00 GiB inference segment", result.Message);
    }

    [Fact]
    public void AllocatorRefusesThe3Point2GiBWorkspaceBeforeAnyDeviceCall()
    {
        var guard = StartOnSimulatedDevice(new FakeMemoryInfoBackend(Total, Total - Reserve));
        var inner = new RecordingAllocator();
        var allocator = new BudgetedAllocator(inner, guard);

        var ex = Assert.Throws<BudgetExceededException>(() => allocator.Allocate(ByteSize.Parse("3.2GiB"), AllocationTags.Transformer));

        Assert.Contains("needs 1.20 GiB more than the inference segment", ex.Message);
        Assert.Equal(Inference, ex.LimitBytes);
        Assert.Equal(0, ex.InUseBytes);
        Assert.Equal(0, inner.Calls);
        Assert.Equal(0, guard.InferenceInUseBytes);
    }
}
