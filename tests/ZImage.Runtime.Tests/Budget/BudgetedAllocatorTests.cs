using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Budget;

public class BudgetedAllocatorTests
{
    private const long MiB = ByteSize.MiB;

    private static BudgetGuard Guard(long inference) =>
        new(new BudgetOptions { TotalBytes = 1024 * MiB, SystemReserveBytes = 0, BaseBytes = 0, InferenceBytes = inference, BufferBytes = 0 });

    [Fact]
    public void RefusalLeavesNothingAllocated()
    {
        var guard = Guard(10 * MiB);
        var inner = new RecordingAllocator();
        var allocator = new BudgetedAllocator(inner, guard);
        using var held = allocator.Allocate(6 * MiB, AllocationTags.Transformer);

        var ex = Assert.Throws<BudgetExceededException>(() => allocator.Allocate(5 * MiB, AllocationTags.Vae));

        Assert.Equal(1, inner.Calls);
        Assert.Equal(6 * MiB, inner.OutstandingInference);
        Assert.Equal(6 * MiB, guard.InferenceInUseBytes);
        Assert.Equal(6 * MiB, ex.InUseBytes);
        Assert.Equal(5 * MiB, ex.RequestedBytes);
        Assert.Equal(MiB, ex.OverByBytes);
    }

    [Fact]
    public void ExactFitIsAllocatedAndTheNextByteRefused()
    {
        var guard = Guard(10 * MiB);
        var allocator = new BudgetedAllocator(new RecordingAllocator(), guard);

        using var all = allocator.Allocate(10 * MiB, AllocationTags.Latents);

        Assert.Equal(10 * MiB, guard.InferenceInUseBytes);
        Assert.Throws<BudgetExceededException>(() => allocator.Allocate(1, AllocationTags.Latents));
    }

    [Fact]
    public void DisposeReturnsTheChargeOnce()
    {
        var guard = Guard(10 * MiB);
        var allocator = new BudgetedAllocator(new RecordingAllocator(), guard);
        var a = allocator.Allocate(4 * MiB, AllocationTags.TextEncoder);

        a.Dispose();

        Assert.True(a.IsDisposed);
        Assert.Equal(0, guard.InferenceInUseBytes);
        var ex = Assert.Throws<ObjectDisposedException>(a.Dispose);
        Assert.Contains("DeviceAllocation#", ex.ObjectName);
        Assert.Equal(0, guard.InferenceInUseBytes);
    }

    [Fact]
    public void WeightsAreNotLimitedAndCountTowardBase()
    {
        var guard = Guard(MiB);
        var inner = new RecordingAllocator();
        var allocator = new BudgetedAllocator(inner, guard);

        var weights = allocator.Allocate(100 * MiB, AllocationTags.Weights);

        Assert.Equal(100 * MiB, guard.BaseBytes);
        Assert.Equal(0, guard.InferenceInUseBytes);
        Assert.Equal(MemoryState.Green, guard.Snapshot.State);
        weights.Dispose();
        Assert.Equal(0, guard.WeightsInUseBytes);
    }

    [Fact]
    public void MeasuredBaseWinsOverSmallerWeights()
    {
        var guard = Guard(MiB);
        guard.SetBase(200 * MiB);
        using var weights = new BudgetedAllocator(new RecordingAllocator(), guard).Allocate(100 * MiB, AllocationTags.Weights);

        Assert.Equal(200 * MiB, guard.BaseBytes);
    }

    [Fact]
    public void ChargeIsTheInnerAllocatorsRoundedBlockSize()
    {
        var guard = Guard(4096);
        var allocator = new BudgetedAllocator(new RoundingRecordingAllocator(), guard);

        Assert.Equal(1024, allocator.ChargeFor(1000));
        using var a = allocator.Allocate(1000, AllocationTags.Vae);
        using var b = allocator.Allocate(3000, AllocationTags.Vae);

        Assert.Equal(1024 + 3072, guard.InferenceInUseBytes);
        // 1000 + 3000 requested bytes would fit in 4096, but the rounded blocks do not leave room for one more byte.
        Assert.Throws<BudgetExceededException>(() => allocator.Allocate(1, AllocationTags.Vae));
    }

    [Fact]
    public void ChargeIsTheRequestWhenTheInnerCannotRound() =>
        Assert.Equal(1000, new BudgetedAllocator(new RecordingAllocator(), Guard(MiB)).ChargeFor(1000));

    [Fact]
    public void RoundingThatShrinksARequestIsRejected()
    {
        var allocator = new BudgetedAllocator(new RecordingAllocator(), Guard(MiB), roundSize: b => b - 1);
        Assert.Throws<InvalidOperationException>(() => allocator.ChargeFor(100));
    }

    [Fact]
    public void DeviceOutOfMemoryReleasesTheChargeAndTurnsTheStateRed()
    {
        var guard = Guard(10 * MiB);
        var inner = new RecordingAllocator { ThrowOutOfMemory = true };
        var allocator = new BudgetedAllocator(inner, guard);

        Assert.Throws<DeviceOutOfMemoryException>(() => allocator.Allocate(MiB, AllocationTags.Transformer));

        Assert.Equal(0, guard.InferenceInUseBytes);
        Assert.True(guard.Snapshot.OutOfMemorySeen);
        Assert.Equal(MemoryState.Red, guard.Snapshot.State);
        guard.ResetOutOfMemory();
        Assert.Equal(MemoryState.Green, guard.Snapshot.State);
    }

    [Fact]
    public void TypedAllocationChargesElementBytes()
    {
        var guard = Guard(MiB);
        using var buffer = new BudgetedAllocator(new RecordingAllocator(), guard).Allocate<float>(1000, AllocationTags.Latents);

        Assert.Equal(4000, guard.InferenceInUseBytes);
        Assert.Equal(1000, buffer.Length);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void NonPositiveSizeIsRejectedBeforeCharging(long bytes)
    {
        var guard = Guard(MiB);
        var inner = new RecordingAllocator();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new BudgetedAllocator(inner, guard).Allocate(bytes, AllocationTags.Vae));

        Assert.Equal(bytes, ex.ActualValue);
        Assert.Equal(0, inner.Calls);
    }

    [Fact]
    public void ParallelAllocationsNeverExceedTheLimit()
    {
        const long limit = 64 * 1024;
        var guard = Guard(limit);
        var inner = new RecordingAllocator();
        var allocator = new BudgetedAllocator(inner, guard);
        long refused = 0;

        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, worker =>
        {
            var rng = new Random(worker);
            var held = new Queue<DeviceAllocation>();
            for (int i = 0; i < 3000; i++)
            {
                if (held.Count > 0 && rng.Next(3) == 0)
                    held.Dequeue().Dispose();
                try
                {
                    held.Enqueue(allocator.Allocate(rng.Next(1, 16 * 1024), AllocationTags.Transformer));
                }
                catch (BudgetExceededException)
                {
                    Interlocked.Increment(ref refused);
                }

                Assert.True(guard.InferenceInUseBytes <= limit);
            }

            while (held.Count > 0)
                held.Dequeue().Dispose();
        });

        Assert.True(inner.PeakInference <= limit, $"peak {inner.PeakInference} > limit {limit}");
        Assert.True(refused > 0, "the workload should hit the limit");
        Assert.Equal(0, guard.InferenceInUseBytes);
        Assert.Equal(0, inner.OutstandingInference);
    }
}
