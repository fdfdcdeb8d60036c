using ZImage.Runtime.Memory;
using static ZImage.Runtime.Tests.Memory.AllocatorInvariants;

namespace ZImage.Runtime.Tests.Memory;

public class SimulatedDeviceBackendTests
{
    [Fact]
    public void CapacityBoundsReservedAndAddressesOnlyGrow()
    {
        using var d = new SimulatedDeviceBackend(10 * MiB);
        Assert.True(d.TryAllocateSegment(4 * MiB, out var s1));
        Assert.True(d.TryAllocateSegment(6 * MiB, out var s2));
        Assert.False(d.TryAllocateSegment(1, out var none));
        Assert.Null(none);
        d.FreeSegment(s1!);
        Assert.True(d.TryAllocateSegment(4 * MiB, out var s3));
        Assert.True(s1!.Address < s2!.Address && s2.Address < s3!.Address); // never reused
        Assert.Equal(new DeviceMemoryInfo(10 * MiB, 0), d.GetMemoryInfo());
        Assert.Equal(3, d.DeviceAllocations);
        Assert.Equal(1, d.DeviceFrees);
        Assert.Equal(1, d.FailedAllocations);
        Assert.Equal(4, d.AllocationAttempts);
        Assert.Equal(10 * MiB, d.PeakReservedBytes);
        Assert.False(d.HasBackingStore);
        var ex = Assert.Throws<NotSupportedException>(() => s3.GetByteView(0, 16));
        Assert.Contains("simulated", ex.Message);
        Assert.Throws<InvalidOperationException>(() => d.FreeSegment(s1));
    }

    [Fact]
    public void NthAttemptFailsOnceAsOutOfMemory()
    {
        using var d = new SimulatedDeviceBackend(new SimulatedDeviceOptions { CapacityBytes = ByteSize.GiB, Faults = new DeviceFaultInjection { FailNthAllocation = 2 } });
        Assert.True(d.TryAllocateSegment(MiB, out _));
        Assert.False(d.TryAllocateSegment(MiB, out _));
        Assert.True(d.TryAllocateSegment(MiB, out _));
        Assert.Equal(1, d.InjectedFaults);
    }

    [Fact]
    public void RandomFaultsAreDeterministicPerSeed()
    {
        static string Pattern(int seed)
        {
            using var d = new SimulatedDeviceBackend(new SimulatedDeviceOptions
            {
                CapacityBytes = SimulatedDeviceBackend.Unlimited,
                Faults = new DeviceFaultInjection { FailureProbability = 0.3, Seed = seed },
            });
            return string.Concat(Enumerable.Range(0, 64).Select(_ => d.TryAllocateSegment(512, out DeviceSegment? _) ? '1' : '0'));
        }
        Assert.Equal(Pattern(5), Pattern(5));
        Assert.NotEqual(Pattern(5), Pattern(6));
        Assert.Contains('0', Pattern(5));
        Assert.Contains('1', Pattern(5));
    }

    [Fact]
    public void ErrorFaultsThrowTypedAndInvalidOptionsAreRejected()
    {
        using var d = new SimulatedDeviceBackend(ByteSize.GiB);
        d.InjectFaults(new DeviceFaultInjection { FailNthAllocation = 1, Kind = DeviceFaultKind.Error });
        var ex = Assert.Throws<InjectedDeviceFaultException>(() => d.TryAllocateSegment(MiB, out _));
        Assert.Equal(MiB, ex.RequestedBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.InjectFaults(new DeviceFaultInjection { FailureProbability = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => d.InjectFaults(new DeviceFaultInjection { FailNthAllocation = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SimulatedDeviceBackend(0));
    }

    [Fact]
    public void AnInjectedOomRunsTheRetryChainAndAnInjectedErrorLeavesThePoolUsable()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        var live = new List<BlockHandle> { a.AllocateBlock(3 * MiB, "t") };
        a.FreeBlock(a.AllocateBlock(1000, "t")); // a cached small segment for the retry to release
        backend.InjectFaults(new DeviceFaultInjection { FailNthAllocation = 1 });
        live.Add(a.AllocateBlock(30 * MiB, "t"));   // 1st attempt fails, release-all frees the small segment, retry succeeds
        var s = a.GetStatistics();
        Assert.Equal(1, s.NumAllocRetries);
        Assert.Equal(1, s.NumDeviceFree);

        backend.InjectFaults(new DeviceFaultInjection { FailNthAllocation = 1, Kind = DeviceFaultKind.Error });
        Assert.Throws<InjectedDeviceFaultException>(() => a.AllocateBlock(40 * MiB, "t"));
        Check(a, backend, live);
        live.Add(a.AllocateBlock(40 * MiB, "t"));
        Check(a, backend, live);
    }
}
