using ZImage.Runtime.Memory;
using static ZImage.Runtime.Tests.Memory.AllocatorInvariants;

namespace ZImage.Runtime.Tests.Memory;

public class HandleSafetyTests
{
    [Fact]
    public void DoubleFreeOfAHandleThrowsObjectDisposed()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        var h = a.AllocateBlock(1000, "t");
        a.FreeBlock(h);
        var ex = Assert.Throws<ObjectDisposedException>(() => a.FreeBlock(h));
        Assert.Contains("double free", ex.Message);
        Assert.False(a.IsLive(h));
        Assert.Throws<ObjectDisposedException>(() => a.FreeBlock(default));
    }

    [Fact]
    public void StaleHandleIsDetectedEvenWhenItsNodeIsReused()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        var h = a.AllocateBlock(1000, "t");
        a.FreeBlock(h);
        var again = a.AllocateBlock(1000, "t"); // the same node and address come back
        Assert.Equal(h.Index, again.Index);
        Assert.NotEqual(h, again);
        Assert.Throws<ObjectDisposedException>(() => a.GetBlockInfo(h));
        Assert.Throws<ObjectDisposedException>(() => a.FreeBlock(h));
        Assert.True(a.IsLive(again));
    }

    [Fact]
    public void AllocationDisposeTwiceAndUseAfterFreeThrowClearly()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        var alloc = a.Allocate(4096, AllocationTags.Latents);
        Assert.Equal(AllocationTags.Latents, alloc.Tag);
        Assert.Equal(4096, alloc.RequestedBytes);
        Assert.Equal(4096, alloc.Size);
        Assert.Equal(0, alloc.Offset);
        alloc.Dispose();
        Assert.True(alloc.IsDisposed);
        var ex = Assert.Throws<ObjectDisposedException>(alloc.Dispose);
        Assert.Contains($"#{alloc.Id}", ex.ObjectName);
        Assert.Throws<ObjectDisposedException>(() => alloc.GetView<float>());
        Assert.Equal(0, a.AllocatedBytes);
    }

    [Fact]
    public void SimulatedSegmentsHaveNoViews()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        using var buffer = a.Allocate<float>(1024, AllocationTags.Transformer);
        Assert.Equal(1024, buffer.Length);
        Assert.Equal(4096, buffer.Allocation.RequestedBytes);
        var ex = Assert.Throws<NotSupportedException>(() => buffer.View);
        Assert.Contains("no backing store", ex.Message);
    }
}

public class StatisticsTests
{
    [Fact]
    public void TagsArePerTagAndPeaksReset()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        var w = a.AllocateBlock(3 * MiB, AllocationTags.Weights);
        var t1 = a.AllocateBlock(1000, AllocationTags.Transformer);
        var t2 = a.AllocateBlock(2000, AllocationTags.Transformer);
        a.FreeBlock(t1);
        var s = a.GetStatistics();
        var tr = s.Tags[AllocationTags.Transformer];
        Assert.Equal(new StatValue(2048, 3072, 3072, 1024), tr.AllocatedBytes);
        Assert.Equal(new StatValue(1, 2, 2, 1), tr.Allocation);
        Assert.Equal(2000, tr.RequestedBytes.Current);
        Assert.Equal(3 * MiB, s.Tags[AllocationTags.Weights].AllocatedBytes.Current);

        a.FreeBlock(t2);
        a.ResetPeakStats();
        s = a.GetStatistics();
        Assert.Equal(0, s.Tags[AllocationTags.Transformer].AllocatedBytes.Peak);
        Assert.Equal(3 * MiB, s.AllocatedBytes.Peak);
        Assert.Equal(s.ReservedBytes.Current, s.ReservedBytes.Peak);

        a.ResetAccumulatedStats();
        s = a.GetStatistics();
        Assert.Equal(0, s.NumDeviceAlloc);
        Assert.Equal(0, s.AllocatedBytes.Allocated);
        Assert.Equal(3 * MiB, s.AllocatedBytes.Current);
        a.FreeBlock(w);
    }

    [Fact]
    public void TorchDictionaryUsesPyTorchKeyNames()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        a.AllocateBlock(1000, "t");
        var d = a.GetStatistics().ToTorchDictionary();
        Assert.Equal(1024, d["allocated_bytes.all.current"]);
        Assert.Equal(2 * MiB, d["reserved_bytes.small_pool.peak"]);
        Assert.Equal(2 * MiB - 1024, d["inactive_split_bytes.all.current"]);
        Assert.Equal(1, d["num_device_alloc"]);
        Assert.Equal(0, d["num_ooms"]);
        Assert.Contains("oversize_segments.current", d.Keys);
    }

    [Fact]
    public void ObserverSeesAllocFreeAndOomInOrder()
    {
        var (_, a) = Create(4 * MiB);
        using var _a = a;
        var seen = new List<string>();
        var observer = new RecordingObserver(seen);
        using (a.Subscribe(observer))
        {
            var h = a.AllocateBlock(1000, "x");
            a.FreeBlock(h);
            Assert.False(a.TryAllocateBlock(50 * MiB, "big", out _));
        }
        a.AllocateBlock(1, "after");
        Assert.Equal(["alloc 1 1024 1000 x", "free 1", "oom 52428800 big"], seen);
    }

    private sealed class RecordingObserver(List<string> seen) : IAllocationObserver
    {
        public void OnAlloc(long id, long size, long requestedBytes, string tag, int stream) => seen.Add($"alloc {id} {size} {requestedBytes} {tag}");
        public void OnFree(long id) => seen.Add($"free {id}");
        public void OnOom(long requestedBytes, string tag, int stream) => seen.Add($"oom {requestedBytes} {tag}");
    }
}

public class HotPathAllocationTests
{
    [Fact]
    public void SteadyStateAllocateAndFreeAllocateNoManagedMemory()
    {
        var (_, a) = Create(ByteSize.GiB, "max_split_size_mb:128");
        using var _a = a;
        long[] sizes = [1000, 5000, 3 * MiB, 12 * MiB, 200 * MiB, 700_000];
        var handles = new BlockHandle[sizes.Length];
        void Cycle()
        {
            for (int i = 0; i < sizes.Length; i++)
                handles[i] = a.AllocateBlock(sizes[i], AllocationTags.Transformer);
            for (int i = sizes.Length - 1; i >= 0; i--)
                a.FreeBlock(handles[i]);
        }
        // Warm: node pool, tag table, JIT, and the allocator lock's one-time bias to this thread (it is granted after
        // BiasedLock.DefaultBiasAfter acquisitions; each cycle acquires it twice per size).
        for (int i = 0; i < 2 * BiasedLock.DefaultBiasAfter / sizes.Length; i++)
            Cycle();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
            Cycle();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

public class ConcurrencyTests
{
    [Fact]
    public void ParallelAllocAndFreeKeepThePoolConsistent()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        Parallel.For(0, 4, worker => AllocAndFreeAtRandom(a, worker, 2000, "w" + worker));
        Check(a, backend, []);
        Assert.Equal(0, a.AllocatedBytes);
        a.EmptyCache();
        Assert.Equal(0, backend.ReservedBytes);
    }
}
