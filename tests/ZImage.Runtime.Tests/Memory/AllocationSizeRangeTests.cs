using ZImage.Runtime.Memory;
using static ZImage.Runtime.Tests.Memory.AllocatorInvariants;

namespace ZImage.Runtime.Tests.Memory;

/// <summary>Sizes at the edge of <see cref="long"/>: a typed argument error naming the range, nothing changed in the allocator.</summary>
public class AllocationSizeRangeTests
{
    public static TheoryData<long> HugeSizes => new()
    {
        long.MaxValue, long.MaxValue - 1, long.MaxValue - 511, long.MaxValue - ByteSize.MiB, long.MaxValue - 2 * ByteSize.MiB + 1,
        CachingAllocator.MaxAllocationBytes + 1, long.MinValue, -1,
    };

    [Theory]
    [MemberData(nameof(HugeSizes))]
    [InlineData(long.MaxValue - 3 * ByteSize.MiB)]
    public void RoundingASizeBeyondTheMaximumThrowsArgumentOutOfRangeInsteadOfOverflowing(long bytes)
    {
        if (bytes < 0) return; // RoundSize of a negative size is the minimum block (PyTorch's rule); the allocator rejects it
        foreach (var conf in new[] { "", "roundup_power2_divisions:4", "roundup_power2_divisions:[>:8]" })
        {
            var settings = AllocatorSettings.Parse(conf);
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => CachingAllocator.RoundSize(bytes, settings));
            Assert.Contains($"0..{CachingAllocator.MaxAllocationBytes}", e.Message);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => CachingAllocator.RoundUpPower2NextDivision(bytes, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => CachingAllocator.GetAllocationSize(bytes));
    }

    [Fact]
    public void TheLargestAcceptedSizeRoundsWithoutOverflow()
    {
        long max = CachingAllocator.MaxAllocationBytes;
        Assert.Equal(max, CachingAllocator.RoundSize(max, AllocatorSettings.Default));
        Assert.Equal(max, CachingAllocator.RoundSize(max - 1, AllocatorSettings.Parse("roundup_power2_divisions:4")));
        Assert.Equal(max, CachingAllocator.GetAllocationSize(max));
        long odd = max - 3 * ByteSize.MiB;
        Assert.True(CachingAllocator.RoundSize(odd, AllocatorSettings.Parse("roundup_power2_divisions:8")) is var r && r >= odd && r <= max);
    }

    [Theory]
    [MemberData(nameof(HugeSizes))]
    public void AllocatingAnyHugeOrNegativeSizeThrowsATypedErrorAndLeavesTheAllocatorUnchanged(long bytes)
    {
        foreach (var conf in new[] { "", "roundup_power2_divisions:4,max_split_size_mb:64" })
        {
            var (backend, a) = Create(ByteSize.GiB, conf);
            using var _a = a;
            var kept = a.AllocateBlock(3000, "t");
            var before = a.GetStatistics();
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => a.AllocateBlock(bytes, "t"));
            Assert.Equal("bytes", e.ParamName);
            Assert.Contains($"0..{CachingAllocator.MaxAllocationBytes}", e.Message);
            Assert.Throws<ArgumentOutOfRangeException>(() => a.TryAllocateBlock(bytes, "t", out _));
            Assert.Equal(before.ToTorchDictionary(), a.GetStatistics().ToTorchDictionary());
            Check(a, backend, [kept]);
            a.FreeBlock(a.AllocateBlock(5000, "t")); // still serves requests
        }
    }

    [Theory]
    [MemberData(nameof(HugeSizes))]
    public void TheNoCacheAllocatorRejectsTheSameSizes(long bytes)
    {
        using var backend = new SimulatedDeviceBackend(ByteSize.GiB);
        using var a = new NoCacheAllocator(backend);
        var before = a.GetStatistics();
        Assert.Throws<ArgumentOutOfRangeException>(() => a.AllocateBlock(bytes, "t"));
        Assert.Equal(before.ToTorchDictionary(), a.GetStatistics().ToTorchDictionary());
    }

    [Fact]
    public void ATraceWithASizeNearLongMaxValueIsATraceFormatErrorNotACrash()
    {
        const string header = "{\"format\":\"zimage-alloc-trace\",\"version\":1}";
        var e = Assert.Throws<TraceFormatException>(() => TraceReader.Parse(header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":9223372036854775807}", "t.jsonl"));
        Assert.Equal(2, e.LineNumber);
        Assert.Contains("<= 4611686018427387904", e.Reason);

        // A trace built in code (not read from a file) is checked by the replayer the same way.
        var trace = new AllocationTrace([AllocationTraceEvent.Alloc(1, 1000), AllocationTraceEvent.Alloc(2, long.MaxValue - ByteSize.MiB)]);
        var r = Assert.Throws<TraceFormatException>(() => TraceReplayer.Replay(trace));
        Assert.Contains("event 1", r.Reason);
    }
}
