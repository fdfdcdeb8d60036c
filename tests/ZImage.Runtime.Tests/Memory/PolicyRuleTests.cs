using ZImage.Runtime.Memory;
using static ZImage.Runtime.Tests.Memory.AllocatorInvariants;

namespace ZImage.Runtime.Tests.Memory;

public class RoundingTests
{
    [Theory]
    [InlineData(0, 512)]
    [InlineData(1, 512)]
    [InlineData(512, 512)]
    [InlineData(513, 1024)]
    [InlineData(1000, 1024)]
    [InlineData(1048577, 1049088)]
    public void DefaultRoundingIsTo512Bytes(long request, long expected) =>
        Assert.Equal(expected, CachingAllocator.RoundSize(request, AllocatorSettings.Default));

    [Fact]
    public void Power2NextDivisionMatchesTheCodeCommentExample() =>
        Assert.Equal(1280, CachingAllocator.RoundUpPower2NextDivision(1200, 4));

    [Theory]
    [InlineData(1200, 1536)]          // 1200 <= 512 * 4: plain 512 B rounding
    [InlineData(2100, 2560)]          // floor 2048, step 512
    [InlineData(1048577, 1310720)]    // floor 1 MiB, step 256 KiB
    [InlineData(5242881, 6291456)]    // floor 4 MiB, step 1 MiB
    [InlineData(4194304, 4194304)]    // a power of two stays
    public void FourDivisionsRoundToQuarterSteps(long request, long expected) =>
        Assert.Equal(expected, CachingAllocator.RoundSize(request, AllocatorSettings.Parse("roundup_power2_divisions:4")));

    [Fact]
    public void PerIntervalDivisionsApplyByPowerOfTwoInterval()
    {
        var s = AllocatorSettings.Parse("roundup_power2_divisions:[2:1,4:4,>:2]");
        Assert.Equal(1, s.GetRoundupPower2Divisions(1_000));            // index 0 (filled by the first key)
        Assert.Equal(4, s.GetRoundupPower2Divisions(5 * MiB));          // [4 MiB, 8 MiB) -> index 2
        Assert.Equal(2, s.GetRoundupPower2Divisions(100 * MiB));        // after the last key
        Assert.Equal(5 * MiB, CachingAllocator.RoundSize(5 * MiB - 100, s));     // quarter steps of 1 MiB
        Assert.Equal(3 * MiB, CachingAllocator.RoundSize(3 * MiB - 100, s));     // 1 division: 512 B rounding -> 3 MiB
    }
}

public class PoolAndSegmentSizeTests
{
    [Fact]
    public void ExactlyOneMiBGoesToTheSmallPoolAndOneByteMoreToTheLarge()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _ = a;
        a.AllocateBlock(MiB, "t");
        var s = a.GetStatistics();
        Assert.Equal(1, s.SmallPool.Segment.Current);
        Assert.Equal(2 * MiB, s.SmallPool.ReservedBytes.Current);
        a.AllocateBlock(MiB + 1, "t");
        s = a.GetStatistics();
        Assert.Equal(1, s.LargePool.Segment.Current);
        Assert.Equal(20 * MiB, s.LargePool.ReservedBytes.Current);
        Assert.Equal(MiB + 512, s.LargePool.AllocatedBytes.Current);
        Assert.Equal(22 * MiB, backend.ReservedBytes);
    }

    [Theory]
    [InlineData(1000, 2 * 1048576)]
    [InlineData(3 * 1048576, 20 * 1048576)]
    [InlineData(10 * 1048576 - 512, 20 * 1048576)]
    [InlineData(10 * 1048576, 10 * 1048576)]
    [InlineData(11 * 1048576 + 1, 12 * 1048576)]
    public void SegmentSizeFollowsGetAllocationSize(long request, long segment)
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        a.AllocateBlock(request, "t");
        Assert.Equal(segment, a.GetStatistics().ReservedBytes.Current);
        Assert.Equal(segment, CachingAllocator.GetAllocationSize(a.RoundSize(request)));
    }
}

public class BestFitTests
{
    [Fact]
    public void EqualSizesAreTakenLowestAddressFirst()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        var x = a.AllocateBlock(12 * MiB, "t");
        var y = a.AllocateBlock(12 * MiB, "t");
        long xAddr = a.GetBlockInfo(x).Address, yAddr = a.GetBlockInfo(y).Address;
        Assert.True(xAddr < yAddr);
        a.FreeBlock(y);
        a.FreeBlock(x);
        var z = a.AllocateBlock(12 * MiB, "t");
        Assert.Equal(xAddr, a.GetBlockInfo(z).Address);
    }

    [Fact]
    public void SmallestFittingBlockWinsOverLowerAddress()
    {
        var (_, a) = Create(ByteSize.GiB);
        using var _a = a;
        var big = a.AllocateBlock(14 * MiB, "t");
        var small = a.AllocateBlock(12 * MiB, "t");
        long smallAddr = a.GetBlockInfo(small).Address;
        a.FreeBlock(big);
        a.FreeBlock(small);
        var z = a.AllocateBlock(11 * MiB, "t");
        Assert.Equal(smallAddr, a.GetBlockInfo(z).Address);
        Assert.Equal(12 * MiB, a.GetBlockInfo(z).Size); // remainder 1 MiB is not > 1 MiB: stays attached
    }
}

public class SplitRuleTests
{
    [Fact]
    public void SmallPoolSplitsARemainderOfExactly512Bytes()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        var live = new List<BlockHandle> { a.AllocateBlock(MiB, "t"), a.AllocateBlock(MiB - 512, "t") };
        var seg = Assert.Single(a.GetSnapshot());
        Assert.Equal(3, seg.Blocks.Count);
        Assert.Equal(512, seg.Blocks[2].Size);
        Assert.False(seg.Blocks[2].IsAllocated);
        live.Add(a.AllocateBlock(1, "t"));
        Assert.Equal(512, a.GetBlockInfo(live[2]).Size);
        Assert.Equal(1, a.GetStatistics().Segment.Current);
        Check(a, backend, live);
    }

    [Fact]
    public void LargePoolKeepsARemainderOfAtMostOneMiBAttached()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        var h = a.AllocateBlock(19 * MiB, "t"); // segment 20 MiB, remainder exactly 1 MiB
        Assert.Equal(20 * MiB, a.GetBlockInfo(h).Size);
        Assert.Equal(20 * MiB, a.GetStatistics().AllocatedBytes.Current);
        var h2 = a.AllocateBlock(19 * MiB - 512, "t"); // new 20 MiB segment, remainder 1 MiB + 512 > 1 MiB: split
        Assert.Equal(19 * MiB - 512, a.GetBlockInfo(h2).Size);
        Assert.Equal(MiB + 512, a.GetStatistics().InactiveSplitBytes.Current);
        Check(a, backend, [h, h2]);
    }

    [Fact]
    public void MidSizedRequestSplitsATwentyMiBSegment()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        var h = a.AllocateBlock(5 * MiB, "t");
        var h2 = a.AllocateBlock(5 * MiB, "t");
        Assert.Equal(1, a.GetStatistics().Segment.Current);
        Assert.Equal(10 * MiB, a.GetStatistics().InactiveSplitBytes.Current);
        Assert.Equal(1, a.GetStatistics().All.InactiveSplit.Current);
        Check(a, backend, [h, h2]);
    }
}

public class OversizeBlockTests
{
    [Fact]
    public void OversizeBlocksAreNeverSplitAndReusedOnlyWithinTwentyMiB()
    {
        var (backend, a) = Create(ByteSize.GiB, "max_split_size_mb:40");
        using var _a = a;
        var h = a.AllocateBlock(100 * MiB, "t");
        a.FreeBlock(h);
        h = a.AllocateBlock(90 * MiB, "t"); // 100 < 90 + 20: whole block, unsplit
        Assert.Equal(100 * MiB, a.GetBlockInfo(h).Size);
        Assert.Equal(1, a.GetStatistics().NumDeviceAlloc);
        Assert.Equal(1, a.GetStatistics().OversizeAllocations.Current);
        a.FreeBlock(h);
        var h2 = a.AllocateBlock(80 * MiB, "t"); // 100 >= 80 + 20: rejected
        Assert.Equal(80 * MiB, a.GetBlockInfo(h2).Size);
        Assert.Equal(2, a.GetStatistics().NumDeviceAlloc);
        var h3 = a.AllocateBlock(5 * MiB, "t"); // a normal request never takes a cached oversize block
        Assert.Equal(3, a.GetStatistics().NumDeviceAlloc);
        Assert.Equal(2, a.GetStatistics().OversizeSegments.Current);
        Check(a, backend, [h2, h3]);
    }

    [Fact]
    public void WithoutMaxSplitALargeCachedBlockIsSplit()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        a.FreeBlock(a.AllocateBlock(100 * MiB, "t"));
        var h = a.AllocateBlock(50 * MiB, "t");
        Assert.Equal(50 * MiB, a.GetBlockInfo(h).Size);
        Assert.Equal(1, a.GetStatistics().NumDeviceAlloc);
        Check(a, backend, [h]);
    }
}

public class MergeTests
{
    [Fact]
    public void FreeBlocksMergeWithinTheirSegmentButNeverAcrossSegments()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        var x = a.AllocateBlock(MiB, "t");
        var y = a.AllocateBlock(MiB, "t");   // fills segment 1
        var z = a.AllocateBlock(MiB, "t");   // segment 2, which starts right where segment 1 ends
        var segs = a.GetSnapshot();
        Assert.Equal(segs[0].Address + segs[0].Size, segs[1].Address);
        a.FreeBlock(y);
        a.FreeBlock(z);
        segs = a.GetSnapshot();
        Assert.Equal(2, segs[0].Blocks.Count);  // y stays a separate free block next to x
        Assert.Single(segs[1].Blocks);          // z merged with its segment's remainder, not with y
        Assert.Equal(MiB, a.GetStatistics().InactiveSplitBytes.Current);
        a.FreeBlock(x);
        segs = a.GetSnapshot();
        Assert.All(segs, s => Assert.Single(s.Blocks));
        Assert.Equal(0, a.GetStatistics().InactiveSplitBytes.Current);
        Assert.Equal(0, a.GetStatistics().All.InactiveSplit.Current);
        Check(a, backend, []);
    }
}

public class OomRetryTests
{
    [Fact]
    public void ReleaseAllThenRetryThenThrowWithPyTorchBreakdown()
    {
        var (backend, a) = Create(21 * MiB);
        using var _a = a;
        a.FreeBlock(a.AllocateBlock(1000, "t"));                // 2 MiB small segment, cached
        var big = a.AllocateBlock(3 * MiB, "t");                // needs 20 MiB: frees the 2 MiB, retries
        var s = a.GetStatistics();
        Assert.Equal(1, s.NumAllocRetries);
        Assert.Equal(1, s.NumDeviceFree);
        var ex = Assert.Throws<DeviceOutOfMemoryException>(() => a.AllocateBlock(1000, AllocationTags.Vae));
        s = a.GetStatistics();
        Assert.Equal(2, s.NumAllocRetries);
        Assert.Equal(1, s.NumOoms);
        Assert.Equal(1000, ex.RequestedBytes);
        Assert.Equal(3 * MiB, ex.AllocatedBytes);
        Assert.Equal(20 * MiB, ex.ReservedBytes);
        Assert.Equal(MiB, ex.FreeBytes);
        Assert.Equal(21 * MiB, ex.TotalBytes);
        Assert.Equal(AllocationTags.Vae, ex.Tag);
        Assert.Contains("max_split_size_mb", ex.Advice); // 17 MiB reserved but unallocated
        Check(a, backend, [big]);
    }

    [Fact]
    public void OneBigEnoughOversizeBlockIsFreedBeforeReleasingEverything()
    {
        var (backend, a) = Create(130 * MiB, "max_split_size_mb:40");
        using var _a = a;
        a.FreeBlock(a.AllocateBlock(100 * MiB, "t"));
        var h = a.AllocateBlock(50 * MiB, "t"); // 100 >= 50 + 20: not reused; 150 > 130: free the 100 MiB block
        var s = a.GetStatistics();
        Assert.Equal(0, s.NumAllocRetries);
        Assert.Equal(1, s.NumDeviceFree);
        Assert.Equal(50 * MiB, s.ReservedBytes.Current);
        Check(a, backend, [h]);
    }

    [Fact]
    public void SeveralOversizeBlocksAreFreedLargestFirstUntilEnough()
    {
        var (backend, a) = Create(200 * MiB, "max_split_size_mb:40");
        using var _a = a;
        var keep = a.AllocateBlock(44 * MiB, "t");
        var b1 = a.AllocateBlock(45 * MiB - 512, "t"); // 46 MiB segment after 2 MiB rounding
        var b2 = a.AllocateBlock(45 * MiB, "t");       // 46 MiB segment
        var b3 = a.AllocateBlock(48 * MiB, "t");       // 48 MiB segment
        a.FreeBlock(b1);
        a.FreeBlock(b2);
        a.FreeBlock(b3);
        // 184 MiB reserved; 90 MiB needs 74 MiB more than is free; no cached block >= 90: free 48, then 46 (94 >= 90).
        var h = a.AllocateBlock(90 * MiB, "t");
        var s = a.GetStatistics();
        Assert.Equal(2, s.NumDeviceFree);
        Assert.Equal(0, s.NumAllocRetries);
        Assert.Equal((44 + 46 + 90) * MiB, s.ReservedBytes.Current);
        Check(a, backend, [keep, h]);
    }
}

public class GarbageCollectionTests
{
    [Fact]
    public void CollectsUnsplitLargeBlocksAtLeastAsOldAsAverage()
    {
        var (backend, a) = Create(100 * MiB, "garbage_collection_threshold:0.5,per_process_memory_fraction:1.0");
        using var _a = a;
        var s12 = a.AllocateBlock(12 * MiB, "t");   // call 1
        var a20 = a.AllocateBlock(20 * MiB, "t");   // call 2
        var b20 = a.AllocateBlock(20 * MiB, "t");   // call 3; reserved 52 MiB > 50 MiB threshold
        long aAddr = a.GetBlockInfo(a20).Address;
        a.FreeBlock(s12);
        a.FreeBlock(a20);                            // cached at call count 3
        for (int i = 0; i < 3; i++)                  // calls 4..6 reuse the 12 MiB block
            a.FreeBlock(a.AllocateBlock(12 * MiB, "t"));
        a.FreeBlock(b20);                            // cached at 6
        var big = a.AllocateBlock(30 * MiB, "t");    // miss at call 7: ages 12->1, a20->4, b20->1, average 2: only a20 goes
        var stats = a.GetStatistics();
        Assert.Equal(1, stats.NumDeviceFree);
        Assert.DoesNotContain(a.GetSnapshot(), seg => seg.Address == aAddr);
        Assert.Equal((12 + 20 + 30) * MiB, stats.ReservedBytes.Current);
        Check(a, backend, [big]);
    }

    [Fact]
    public void ThresholdIsInactiveWithoutAMemoryFraction()
    {
        var (_, a) = Create(100 * MiB, "garbage_collection_threshold:0.5");
        using var _a = a;
        var x = a.AllocateBlock(30 * MiB, "t");
        var y = a.AllocateBlock(30 * MiB, "t");
        a.FreeBlock(x);
        a.FreeBlock(y);
        a.AllocateBlock(40 * MiB, "t");
        Assert.Equal(0, a.GetStatistics().NumDeviceFree);
        Assert.Equal(100 * MiB, a.ReservedBytes);
    }

    [Fact]
    public void MemoryFractionCapsReserved()
    {
        var (_, a) = Create(100 * MiB, "per_process_memory_fraction:0.5");
        using var _a = a;
        Assert.Equal(50 * MiB, a.AllowedMemoryMaximum);
        a.AllocateBlock(40 * MiB, "t");
        var ex = Assert.Throws<DeviceOutOfMemoryException>(() => a.AllocateBlock(20 * MiB, "t"));
        Assert.Contains("per_process_memory_fraction", ex.Advice);
    }
}

public class EmptyCacheTests
{
    [Fact]
    public void ReleasesUnsplitCachedSegmentsAndKeepsSplitOnes()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        var keep = a.AllocateBlock(4 * MiB, "t");           // 20 MiB segment, split, stays
        a.FreeBlock(a.AllocateBlock(30 * MiB, "t"));        // 30 MiB segment, cached
        a.FreeBlock(a.AllocateBlock(1000, "t"));            // 2 MiB small segment, cached
        a.EmptyCache();
        var s = a.GetStatistics();
        Assert.Equal(20 * MiB, s.ReservedBytes.Current);
        Assert.Equal(2, s.NumDeviceFree);
        Check(a, backend, [keep]);
        a.FreeBlock(keep);
        a.EmptyCache();
        Assert.Equal(0, a.ReservedBytes);
        Assert.Equal(0, backend.ReservedBytes);
    }
}
