using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Budget;

public class MemorySnapshotTests
{
    private const long GiB = ByteSize.GiB;

    // 16 GiB: reserve 1, base 8, inference 4, buffer 1, free 2.
    private static BudgetGuard Guard() =>
        new(new BudgetOptions { TotalBytes = 16 * GiB, SystemReserveBytes = GiB, BaseBytes = 8 * GiB, InferenceBytes = 4 * GiB, BufferBytes = GiB });

    [Fact]
    public void IdleDeviceIsGreen()
    {
        var s = Guard().Snapshot;

        Assert.Equal(MemoryState.Green, s.State);
        Assert.Equal(2 * GiB, s.FreeBytes);
        Assert.Null(s.DeviceUsedBytes);
    }

    [Fact]
    public void WorkspaceWithinTheSegmentIsYellow()
    {
        var guard = Guard();
        using var a = new BudgetedAllocator(new RecordingAllocator(), guard).Allocate(GiB, AllocationTags.Transformer);

        var s = guard.Snapshot;

        Assert.Equal(MemoryState.Yellow, s.State);
        Assert.Equal(GiB, s.InferenceInUseBytes);
        Assert.Equal(3 * GiB, s.InferenceAvailableBytes);
    }

    [Fact]
    public void DeviceUseBeyondTheInferenceSegmentIsGray()
    {
        var guard = Guard();

        guard.ObserveDeviceMemory(new DeviceMemoryInfo(16 * GiB, 16 * GiB - (13 * GiB + GiB / 2)));

        var s = guard.Snapshot;
        Assert.Equal(MemoryState.Gray, s.State);
        Assert.Equal(GiB / 2, s.BufferInUseBytes);
        Assert.Equal(13 * GiB + GiB / 2, s.DeviceUsedBytes);
    }

    [Fact]
    public void DeviceUseBeyondTheBufferIsRed()
    {
        var guard = Guard();

        guard.ObserveDeviceMemory(new DeviceMemoryInfo(16 * GiB, 16 * GiB - (14 * GiB + 1)));

        Assert.Equal(MemoryState.Red, guard.Snapshot.State);
        Assert.Equal(GiB, guard.Snapshot.BufferInUseBytes);
    }

    [Fact]
    public void WeightsGrowingPastTheLayoutEatTheBufferThenGoRed()
    {
        var guard = Guard();
        var allocator = new BudgetedAllocator(new RecordingAllocator(), guard);

        using (allocator.Allocate(10 * GiB + GiB / 2, AllocationTags.Weights))
            Assert.Equal(MemoryState.Gray, guard.Snapshot.State);
        using (allocator.Allocate(11 * GiB + 1, AllocationTags.Weights))
            Assert.Equal(MemoryState.Red, guard.Snapshot.State);
        Assert.Equal(MemoryState.Green, guard.Snapshot.State);
    }

    [Fact]
    public void LimitLoweredBelowWhatIsInUseIsRed()
    {
        var guard = Guard();
        using var a = new BudgetedAllocator(new RecordingAllocator(), guard).Allocate(3 * GiB, AllocationTags.Vae);

        guard.SetInferenceLimit(2 * GiB);

        Assert.Equal(MemoryState.Red, guard.Snapshot.State);
    }

    [Fact]
    public void ChangesRaiseOneEventEachWithPreviousAndCurrent()
    {
        var guard = Guard();
        var events = new List<MemorySnapshotChangedEventArgs>();
        guard.SnapshotChanged += (_, e) => events.Add(e);
        var allocator = new BudgetedAllocator(new RecordingAllocator(), guard);

        var a = allocator.Allocate(GiB, AllocationTags.Transformer);
        a.Dispose();

        Assert.Equal(2, events.Count);
        Assert.Equal(MemoryState.Green, events[0].Previous.State);
        Assert.Equal(MemoryState.Yellow, events[0].Current.State);
        Assert.Equal(GiB, events[0].Current.InferenceInUseBytes);
        Assert.Equal(MemoryState.Green, events[1].Current.State);
    }

    [Fact]
    public void NoOpChangesRaiseNoEvent()
    {
        var guard = Guard();
        int raised = 0;
        guard.SnapshotChanged += (_, _) => raised++;
        var sample = new DeviceMemoryInfo(16 * GiB, 7 * GiB);

        guard.SetBase(8 * GiB);
        guard.ObserveDeviceMemory(sample);
        guard.ObserveDeviceMemory(sample);
        guard.ResetOutOfMemory();

        Assert.Equal(1, raised);
    }

    [Fact]
    public void OutOfMemoryIsStickyUntilReset()
    {
        var guard = Guard();
        var states = new List<MemoryState>();
        guard.SnapshotChanged += (_, e) => states.Add(e.Current.State);

        guard.RecordOutOfMemory();
        guard.RecordOutOfMemory();
        guard.ResetOutOfMemory();

        Assert.Equal([MemoryState.Red, MemoryState.Green], states);
    }

    [Fact]
    public void SampleReadsTheBackendOnce()
    {
        var backend = new FakeMemoryInfoBackend(16 * GiB, 15 * GiB);
        var guard = BudgetGuard.Start(new BudgetOptions { InferenceBytes = 4 * GiB }, backend);
        backend.Info = new DeviceMemoryInfo(16 * GiB, 10 * GiB);
        int before = backend.InfoCalls;

        var s = guard.Sample();

        Assert.Equal(before + 1, backend.InfoCalls);
        Assert.Equal(6 * GiB, s.DeviceUsedBytes);
        _ = guard.Snapshot;
        Assert.Equal(before + 1, backend.InfoCalls);
    }

    [Fact]
    public void SampleWithoutABackendSaysHowToGetOne() =>
        Assert.Contains("BudgetGuard.Start", Assert.Throws<InvalidOperationException>(() => Guard().Sample()).Message);

    [Fact]
    public void SnapshotsWithEqualValuesAreEqual() => Assert.Equal(Guard().Snapshot, Guard().Snapshot);
}
