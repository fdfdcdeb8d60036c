using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Memory;

/// <summary>Recomputes everything an allocator claims from its segment snapshot and the live handle set.</summary>
internal static class AllocatorInvariants
{
    public const long MiB = ByteSize.MiB;

    public static (SimulatedDeviceBackend Backend, CachingAllocator Allocator) Create(long capacity, string conf = "") =>
        Create(capacity, AllocatorSettings.Parse(conf));

    public static (SimulatedDeviceBackend Backend, CachingAllocator Allocator) Create(long capacity, AllocatorSettings settings)
    {
        var backend = new SimulatedDeviceBackend(capacity);
        return (backend, new CachingAllocator(backend, settings, ownsBackend: true));
    }

    /// <summary>
    /// Allocates (1 B to 4 MiB, tag <paramref name="tag"/>) and frees at random, <paramref name="ops"/> times, then frees
    /// what is left: the workload the concurrency tests run on several threads at once.
    /// </summary>
    public static void AllocAndFreeAtRandom(CachingAllocator allocator, int seed, int ops, string tag)
    {
        var rng = new Random(seed);
        var mine = new List<BlockHandle>();
        for (int i = 0; i < ops; i++)
        {
            if (mine.Count > 0 && rng.Next(2) == 0)
            {
                int k = rng.Next(mine.Count);
                allocator.FreeBlock(mine[k]);
                mine.RemoveAt(k);
            }
            else
            {
                mine.Add(allocator.AllocateBlock(rng.Next(1, 4 * (int)MiB), tag));
            }
        }
        foreach (var h in mine)
            allocator.FreeBlock(h);
    }

    /// <summary>Checks tiling, merge, split and oversize rules and that statistics equal a recomputation.</summary>
    public static void Check(CachingAllocator allocator, SimulatedDeviceBackend backend, IReadOnlyCollection<BlockHandle> live)
    {
        var settings = allocator.Settings;
        long maxSplit = settings.MaxSplitSizeBytes;
        var segments = allocator.GetSnapshot();
        var stats = allocator.GetStatistics();

        long reserved = 0, allocated = 0, requested = 0, inactiveSplit = 0, inactiveSplitBytes = 0, allocations = 0;
        long oversizeAllocations = 0, oversizeSegments = 0, smallReserved = 0, smallAllocated = 0;
        var liveBlocks = new Dictionary<long, BlockSnapshot>();
        long previousEnd = long.MinValue;
        foreach (var seg in segments)
        {
            Assert.True(seg.Address >= previousEnd, "segments overlap");
            previousEnd = seg.Address + seg.Size;
            reserved += seg.Size;
            if (seg.Size >= maxSplit) oversizeSegments++;
            if (seg.IsSmallPool) smallReserved += seg.Size;
            Assert.Equal(seg.IsSmallPool ? CachingAllocator.SmallBuffer : seg.Size, seg.Size);
            long offset = 0;
            bool split = seg.Blocks.Count > 1;
            BlockSnapshot? prev = null;
            foreach (var b in seg.Blocks)
            {
                // Blocks tile their segment exactly: no gaps, no overlaps, nothing outside it.
                Assert.Equal(offset, b.Offset);
                Assert.Equal(seg.Address + b.Offset, b.Address);
                Assert.True(b.Size > 0 && b.Size % CachingAllocator.MinBlockSize == 0, $"block size {b.Size}");
                offset += b.Size;
                // Merge rule: two neighbouring free blocks never remain.
                Assert.False(prev is { IsAllocated: false } && !b.IsAllocated, "adjacent free blocks were not merged");
                if (b.IsAllocated)
                {
                    allocations++;
                    allocated += b.Size;
                    requested += b.RequestedBytes;
                    if (seg.IsSmallPool) smallAllocated += b.Size;
                    if (b.Size >= maxSplit) oversizeAllocations++;
                    liveBlocks.Add(b.Id, b);
                    long rounded = CachingAllocator.RoundSize(b.RequestedBytes, settings);
                    Assert.True(b.Size >= rounded);
                    if (seg.IsSmallPool)
                        Assert.Equal(rounded, b.Size); // small pool splits any remainder >= 512
                    else if (rounded >= maxSplit)
                    {
                        Assert.Single(seg.Blocks); // oversize blocks are never split
                        Assert.True(b.Size < rounded + settings.MaxNonSplitRoundingBytes, "oversize reuse beyond the +20 MiB tolerance");
                    }
                    else
                        Assert.True(b.Size - rounded <= CachingAllocator.SmallSize, "large-pool remainder > 1 MiB was not split off");
                }
                else if (split)
                {
                    inactiveSplit++;
                    inactiveSplitBytes += b.Size;
                }
                prev = b;
            }
            Assert.Equal(seg.Size, offset);
        }

        Assert.Equal(live.Count, allocations);
        foreach (var h in live)
        {
            var info = allocator.GetBlockInfo(h);
            Assert.True(liveBlocks.TryGetValue(info.Id, out var snap), $"live handle {h} not in the snapshot");
            Assert.Equal(snap!.Address, info.Address);
            Assert.Equal(snap.Size, info.Size);
        }

        Assert.Equal(reserved, stats.ReservedBytes.Current);
        Assert.Equal(reserved, allocator.ReservedBytes);
        Assert.Equal(reserved, backend.ReservedBytes);
        Assert.Equal(segments.Count, stats.Segment.Current);
        Assert.Equal(backend.LiveSegments, segments.Count);
        Assert.Equal(allocated, stats.AllocatedBytes.Current);
        Assert.Equal(allocated, allocator.AllocatedBytes);
        Assert.Equal(allocated, stats.ActiveBytes.Current);
        Assert.Equal(requested, stats.RequestedBytes.Current);
        Assert.Equal(allocations, stats.Allocation.Current);
        Assert.Equal(inactiveSplit, stats.All.InactiveSplit.Current);
        Assert.Equal(inactiveSplitBytes, stats.InactiveSplitBytes.Current);
        Assert.Equal(oversizeAllocations, stats.OversizeAllocations.Current);
        Assert.Equal(oversizeSegments, stats.OversizeSegments.Current);
        Assert.Equal(smallReserved, stats.SmallPool.ReservedBytes.Current);
        Assert.Equal(smallAllocated, stats.SmallPool.AllocatedBytes.Current);
        Assert.Equal(reserved - smallReserved, stats.LargePool.ReservedBytes.Current);
        Assert.Equal(backend.DeviceAllocations - backend.DeviceFrees, segments.Count);
        Assert.Equal(backend.DeviceAllocations, stats.NumDeviceAlloc);
        Assert.Equal(backend.DeviceFrees, stats.NumDeviceFree);
        Assert.True(stats.AllocatedBytes.Peak >= stats.AllocatedBytes.Current);
        Assert.True(stats.ReservedBytes.Peak >= stats.ReservedBytes.Current);
        Assert.Equal(allocated, stats.Tags.Values.Sum(t => t.AllocatedBytes.Current));
        Assert.Equal(allocations, stats.Tags.Values.Sum(t => t.Allocation.Current));
    }
}
