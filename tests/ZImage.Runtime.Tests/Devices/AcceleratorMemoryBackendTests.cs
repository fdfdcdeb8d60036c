using ILGPU;
using ILGPU.Runtime;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Devices;

/// <summary>One CPU accelerator shared by the backend tests (creating one costs more than the tests themselves).</summary>
public sealed class CpuDeviceFixture : IDisposable
{
    public ComputeDevice Device { get; } = DeviceSelector.Select(new DeviceOptions { ForceCpu = true, CpuCapacityBytes = 256 * ByteSize.MiB });

    public void Dispose() => Device.Dispose();
}

public class AcceleratorMemoryBackendTests(CpuDeviceFixture fixture) : IClassFixture<CpuDeviceFixture>
{
    private AcceleratorMemoryBackend Backend(long? capacity = null) =>
        fixture.Device.CreateAcceleratorBackend(new AcceleratorMemoryBackendOptions { CapacityBytes = capacity });

    [Fact]
    public void BytesWrittenThroughASubViewReadBackThroughAnother()
    {
        using var backend = Backend();
        Assert.True(backend.TryAllocateSegment(4096, out var segment));
        var data = Enumerable.Range(0, 1024).Select(i => (byte)(i * 7)).ToArray();

        segment!.GetByteView(512, 1024).CopyFromCPU(data);
        segment.GetByteView(0, 512).MemSetToZero();
        fixture.Device.Accelerator.Synchronize();

        Assert.Equal(data, segment.GetByteView(512, 1024).GetAsArray());
        Assert.Equal(new byte[512], segment.GetByteView(0, 512).GetAsArray());
    }

    [Fact]
    public void TypedSubViewIsAKernelArgument()
    {
        using var backend = Backend();
        Assert.True(backend.TryAllocateSegment(2048, out var segment));
        segment!.GetByteView(0, 2048).MemSetToZero();
        var view = segment!.GetByteView(1024, 16 * sizeof(float)).Cast<float>();
        var kernel = fixture.Device.Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>>(FillKernel);

        kernel(16, view);
        fixture.Device.Accelerator.Synchronize();

        Assert.Equal(Enumerable.Range(0, 16).Select(i => i * 2f), view.GetAsArray());
        Assert.Equal(new byte[1024], segment.GetByteView(0, 1024).GetAsArray());
    }

    private static void FillKernel(Index1D i, ArrayView<float> data) => data[i] = i * 2f;

    [Fact]
    public void CapacityRefusalReturnsFalseAndKeepsAccounts()
    {
        using var backend = Backend(capacity: 8192);

        Assert.True(backend.TryAllocateSegment(6000, out _));
        Assert.False(backend.TryAllocateSegment(4000, out var refused));

        Assert.Null(refused);
        Assert.Equal(6000, backend.AllocatedBytes);
        Assert.Equal(new DeviceMemoryInfo(8192, 2192), backend.GetMemoryInfo());
        Assert.True(backend.TryAllocateSegment(2192, out _));
    }

    [Fact]
    public void ParallelAllocationsNeverCrossTheCapacity()
    {
        using var backend = Backend(capacity: 64 * 1024);
        int granted = 0;

        Parallel.For(0, 64, i =>
        {
            if (backend.TryAllocateSegment(4096, out _))
                Interlocked.Increment(ref granted);
        });

        Assert.Equal(16, granted);
        Assert.Equal(64 * 1024, backend.AllocatedBytes);
    }

    [Fact]
    public void FreedSegmentReturnsItsBytesAndRejectsViews()
    {
        using var backend = Backend(capacity: 8192);
        Assert.True(backend.TryAllocateSegment(4096, out var segment));

        backend.FreeSegment(segment!);

        Assert.Equal(0, backend.AllocatedBytes);
        Assert.Equal(0, backend.SegmentCount);
        Assert.Equal(8192, backend.GetMemoryInfo().FreeBytes);
        Assert.Throws<ObjectDisposedException>(() => segment!.GetByteView(0, 1));
        Assert.Contains("already freed", Assert.Throws<ArgumentException>(() => backend.FreeSegment(segment!)).Message);
    }

    [Fact]
    public void SegmentFromAnotherBackendIsRejected()
    {
        using var a = Backend();
        using var b = Backend();
        Assert.True(a.TryAllocateSegment(512, out var segment));

        Assert.Contains("does not belong", Assert.Throws<ArgumentException>(() => b.FreeSegment(segment!)).Message);
    }

    [Fact]
    public void DisposeFreesEverythingAndRefusesFurtherUse()
    {
        var backend = Backend();
        Assert.True(backend.TryAllocateSegment(1024, out var s1));
        Assert.True(backend.TryAllocateSegment(2048, out _));

        backend.Dispose();
        backend.Dispose();

        Assert.Equal(0, backend.AllocatedBytes);
        Assert.Throws<ObjectDisposedException>(() => s1!.GetByteView(0, 1));
        Assert.Throws<ObjectDisposedException>(() => backend.TryAllocateSegment(1, out _));
        Assert.Throws<ObjectDisposedException>(() => backend.GetMemoryInfo());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void NonPositiveSegmentSizeIsRejected(long bytes)
    {
        using var backend = Backend();
        Assert.Equal(bytes, Assert.Throws<ArgumentOutOfRangeException>(() => backend.TryAllocateSegment(bytes, out _)).ActualValue);
    }

    [Fact]
    public void ViewOutsideTheSegmentIsRejected()
    {
        using var backend = Backend();
        Assert.True(backend.TryAllocateSegment(1024, out var segment));

        Assert.Equal("length", Assert.Throws<ArgumentOutOfRangeException>(() => segment!.GetByteView(512, 513)).ParamName);
        Assert.Equal("offset", Assert.Throws<ArgumentOutOfRangeException>(() => segment!.GetByteView(-1, 1)).ParamName);
    }

    [Fact]
    public void CpuMemoryInfoIsDeviceCapacityMinusHeld()
    {
        using var backend = Backend();
        Assert.True(backend.TryAllocateSegment(ByteSize.MiB, out _));

        Assert.Equal(new DeviceMemoryInfo(256 * ByteSize.MiB, 255 * ByteSize.MiB), backend.GetMemoryInfo());
        Assert.True(backend.HasBackingStore);
        Assert.StartsWith("cpu(", backend.Name);
    }

    [Fact]
    public void BudgetGuardDetectsTheBackendsCapacity()
    {
        using var backend = Backend(capacity: 16 * ByteSize.MiB);
        Assert.True(backend.TryAllocateSegment(2 * ByteSize.MiB, out _));

        var guard = BudgetGuard.Start(new BudgetOptions { InferenceBytes = 4 * ByteSize.MiB, BufferBytes = ByteSize.MiB }, backend);

        Assert.Equal(16 * ByteSize.MiB, guard.TotalBytes);
        Assert.Equal(2 * ByteSize.MiB, guard.SystemReserveBytes);
    }

    [Fact]
    public void ZeroCapacityOptionIsRejectedByName() =>
        Assert.Equal("CapacityBytes", Assert.Throws<ArgumentOutOfRangeException>(() => Backend(capacity: 0)).ParamName);
}
