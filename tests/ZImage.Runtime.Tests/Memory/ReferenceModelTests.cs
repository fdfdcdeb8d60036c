using CsCheck;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Memory;

/// <summary>
/// Oracle tests: the real <see cref="CachingAllocator"/> (over a <see cref="SimulatedDeviceBackend"/>) and the simple
/// <see cref="ReferenceCachingAllocator"/> run the same operations, and after every operation they must agree on the
/// outcome, the block handed out, every statistic (peaks, cumulative totals and per-tag values included), the reserved
/// and allocated bytes and the whole segment snapshot.
/// </summary>
public class ReferenceModelTests
{
    private const long MiB = ByteSize.MiB;

    private enum OpKind { Alloc, Free, EmptyCache, ResetPeak, ResetAccumulated }

    private readonly record struct Op(OpKind Kind, long Size, int Stream, int Pick)
    {
        public override string ToString() => Kind switch
        {
            OpKind.Alloc => $"alloc({Size}, stream {Stream}, tag t{Pick % 3})",
            OpKind.Free => $"free(live[{Pick} % count])",
            _ => Kind.ToString(),
        };
    }

    private static readonly string[] Confs =
    [
        "",
        "max_split_size_mb:40",
        "roundup_power2_divisions:4",
        "max_split_size_mb:64,roundup_power2_divisions:[2:2,>:8]",
        "garbage_collection_threshold:0.6,per_process_memory_fraction:0.8",
        "max_split_size_mb:40,max_non_split_rounding_mb:40",
    ];

    // Weighted so that the small pool, 1-10 MiB (20 MiB segments), >10 MiB and oversize (>= 40/64 MiB, up to > 100 MiB)
    // requests all occur; the fixed sizes repeat often enough that cached blocks, oversize ones included, get reused,
    // and some pairs lie exactly on the near-fit limit (44 + 20 = 64, 64 + 20 = 84, 60 + 40 = 100).
    private static readonly Gen<long> Size = Gen.Frequency(
        (4, (IGen<long>)Gen.Long[0, 4096]),
        (4, Gen.Long[4096, MiB + 4096]),
        (4, Gen.Long[MiB, 10 * MiB]),
        (3, Gen.Long[10 * MiB, 40 * MiB]),
        (3, Gen.Long[40 * MiB, 130 * MiB]),
        (3, Gen.OneOf(512L, MiB, 2 * MiB, 20 * MiB, 42 * MiB, 44 * MiB, 60 * MiB, 64 * MiB, 84 * MiB, 100 * MiB)));

    private static readonly Gen<int> Stream = Gen.Frequency(
        (8, (IGen<int>)Gen.Const(0)),
        (1, Gen.Const(1)),
        (1, Gen.Const(2)));

    private static readonly Gen<OpKind> Kind = Gen.Frequency(
        (55, (IGen<OpKind>)Gen.Const(OpKind.Alloc)),
        (36, Gen.Const(OpKind.Free)),
        (4, Gen.Const(OpKind.EmptyCache)),
        (3, Gen.Const(OpKind.ResetPeak)),
        (2, Gen.Const(OpKind.ResetAccumulated)));

    private static readonly Gen<Op> OpGen = Gen.Select(Kind, Size, Stream, Gen.Int[0, 1000], (k, s, st, p) => new Op(k, s, st, p));

    private static readonly Gen<(long Capacity, string Conf, Op[] Ops)> Scenario = Gen.Select(
        Gen.OneOf(48 * MiB, 200 * MiB, ByteSize.GiB),
        Gen.OneOf(Confs),
        OpGen.Array[1, 150]);

    private static long _retries, _ooms, _oversizeReuses, _gcReleases, _availableReleases, _otherStreamAllocations;

    [Fact]
    public void RandomSequencesChooseTheSameBlocksAndStatisticsAsTheReferenceModel()
    {
        Scenario.Sample(s => Replay(s.Capacity, s.Conf, s.Ops), iter: 400,
            print: s => $"capacity {s.Capacity}, \"{s.Conf}\": {string.Join("; ", s.Ops)}");

        // The generators are tuned so that the rare paths actually run.
        Assert.True(_retries > 0, "no sample released all cached blocks and retried");
        Assert.True(_ooms > 0, "no sample ran out of memory");
        Assert.True(_oversizeReuses > 0, "no sample reused a cached oversize block");
        Assert.True(_gcReleases > 0, "no sample freed a segment by garbage collection");
        Assert.True(_availableReleases > 0, "no sample freed an oversize block by release_available_cached_blocks");
        Assert.True(_otherStreamAllocations > 0, "no sample allocated on another stream");
    }

    private static void Replay(long capacity, string conf, Op[] ops)
    {
        using var twin = new Twin(capacity, conf);
        var live = new List<Live>();
        for (int i = 0; i < ops.Length; i++)
        {
            var op = ops[i];
            string where = $"op {i} {op}";
            switch (op.Kind)
            {
                case OpKind.Alloc:
                    if (twin.TryAlloc(op.Size, "t" + (op.Pick % 3), op.Stream, where) is { } l)
                        live.Add(l);
                    break;
                case OpKind.Free when live.Count > 0:
                    int k = op.Pick % live.Count;
                    twin.Free(live[k]);
                    live.RemoveAt(k);
                    break;
                case OpKind.EmptyCache:
                    twin.Real.EmptyCache();
                    twin.Model.EmptyCache();
                    break;
                case OpKind.ResetPeak:
                    twin.Real.ResetPeakStats();
                    twin.Model.ResetPeakStats();
                    break;
                case OpKind.ResetAccumulated:
                    twin.Real.ResetAccumulatedStats();
                    twin.Model.ResetAccumulatedStats();
                    break;
            }
            twin.AssertSame(where);
        }

        var stats = twin.Model.GetStatistics();
        Interlocked.Add(ref _retries, stats.NumAllocRetries);
        Interlocked.Add(ref _ooms, stats.NumOoms);
        Interlocked.Add(ref _oversizeReuses, twin.Model.OversizeReuses);
        Interlocked.Add(ref _gcReleases, twin.Model.GcReleasedSegments);
        Interlocked.Add(ref _availableReleases, twin.Model.AvailableReleasedSegments);
        Interlocked.Add(ref _otherStreamAllocations, twin.Model.OtherStreamAllocations);

        foreach (var l in live)
            twin.Free(l);
        twin.AssertSame("after freeing everything");
        twin.Real.EmptyCache();
        twin.Model.EmptyCache();
        twin.AssertSame("after the final EmptyCache");
        Assert.Equal(0, twin.Real.ReservedBytes);
    }

    [Fact]
    public void CrowdedSizeClassesAndEqualSizedFreeBlocksResolveToTheSmallestThenLowestAddress()
    {
        // Dozens of free blocks whose sizes share a size class (within 1/16 of each other) and many exact ties: the
        // best fit must still be the smallest size, then the lowest address, as PyTorch's ordered set gives.
        using var twin = new Twin(ByteSize.GiB, "");
        var rng = new Random(7);
        var live = new List<Live>();
        for (int i = 0; i < 120; i++)
            live.Add(twin.Alloc(i % 3 == 0 ? 8192 : 8192 + 512 * rng.Next(0, 8), "t"));
        for (int i = 0; i < live.Count; i += 2)
            twin.Free(live[i]); // every other block: free neighbours cannot merge, so they stay separate entries
        twin.AssertSame("half freed");
        for (int i = 0; i < 60; i++)
            live.Add(twin.Alloc(8192 + 512 * rng.Next(0, 8), "t"));
        for (int i = 0; i < 40; i++)
            live.Add(twin.Alloc(2 * MiB + 512 * rng.Next(0, 64), "t")); // large pool: 20 MiB segments split many ways
        twin.AssertSame("refilled");
    }

    [Fact]
    public void ReleaseAvailableFreesOversizeBlocksOfTheRequestingStreamLargestFirstUntilEnough()
    {
        using var twin = new Twin(250 * MiB, "max_split_size_mb:40");
        var keep = twin.Alloc(30 * MiB, "t");          // 30 MiB segment: not oversize
        var a = twin.Alloc(42 * MiB, "t");
        var b = twin.Alloc(46 * MiB, "t");
        var c = twin.Alloc(50 * MiB, "t");
        var other = twin.Alloc(48 * MiB, "t", stream: 1);
        long keepAt = keep.Model.Segment.Address, aAt = a.Model.Segment.Address, otherAt = other.Model.Segment.Address;
        foreach (var l in new[] { keep, a, b, c, other })
            twin.Free(l);
        twin.AssertSame("all cached");

        // 216 MiB reserved + 60 > 250 and no cached stream-0 block >= 60 MiB: free stream 0's oversize blocks from the
        // largest down (50, then 46: 96 >= 60). The 42 MiB block, the non-oversize 30 MiB block and stream 1's 48 MiB
        // block stay, and nothing was released wholesale (no retry).
        var big = twin.Alloc(60 * MiB, "t");

        var s = twin.Real.GetStatistics();
        Assert.Equal(2, s.NumDeviceFree);
        Assert.Equal(0, s.NumAllocRetries);
        Assert.Equal(1, twin.Model.MultiBlockAvailableReleases);
        Assert.Equal(
            [(keepAt, 30 * MiB), (aAt, 42 * MiB), (otherAt, 48 * MiB), (big.Model.Segment.Address, 60 * MiB)],
            twin.Real.GetSnapshot().Select(seg => (seg.Address, seg.Size)));
    }

    [Fact]
    public void GarbageCollectionFreesBlocksAtLeastAsOldAsTheAverageAgainAndAgainUntilUnderTheThreshold()
    {
        // allowed 200 MiB, GC threshold 0.2 * 200 = 40 MiB.
        using var twin = new Twin(200 * MiB, "garbage_collection_threshold:0.2,per_process_memory_fraction:1.0");
        var h = twin.Alloc(20 * MiB, "t");  // large-pool get_free_block call 1
        var a = twin.Alloc(30 * MiB, "t");  // 2
        var b = twin.Alloc(32 * MiB, "t");  // 3
        var c = twin.Alloc(34 * MiB, "t");  // 4 (GC ran at calls 3 and 4 but found no cached block)
        long hAt = h.Model.Segment.Address;
        twin.Free(h);                       // cached at call 4
        twin.Free(b);                       // cached at call 4
        ReuseH(4);                          // calls 5..8 take the 20 MiB block and cache it again
        twin.Free(c);                       // cached at 8
        ReuseH(2);                          // 9, 10
        twin.Free(a);                       // cached at 10
        ReuseH(1);                          // 11
        twin.AssertSame("before the collecting miss");

        // Call 12 misses (40 MiB). Reserved 116 MiB > 40: reclaim 76 MiB. Ages h 1, a 2, b 8, c 4 (average 3.75): the
        // first pass frees b and c (66 MiB, not enough); the second averages the rest (1.5) and frees a (96 MiB).
        var big = twin.Alloc(40 * MiB, "t");

        Assert.Equal(3, twin.Real.GetStatistics().NumDeviceFree);
        Assert.Equal(3, twin.Model.GcReleasedSegments);
        Assert.Equal(
            [(hAt, 20 * MiB), (big.Model.Segment.Address, 40 * MiB)],
            twin.Real.GetSnapshot().Select(seg => (seg.Address, seg.Size)));

        void ReuseH(int times)
        {
            for (int i = 0; i < times; i++)
            {
                var x = twin.Alloc(20 * MiB, "t");
                Assert.Equal(hAt, x.Model.Address);
                twin.Free(x);
            }
        }
    }

    // ---------------------------------------------------------------- the real allocator and the model side by side

    private readonly record struct Live(BlockHandle Real, ReferenceCachingAllocator.Block Model);

    private sealed class Twin : IDisposable
    {
        private readonly string _name;

        public Twin(long capacity, string conf)
        {
            var settings = AllocatorSettings.Parse(conf);
            Backend = new SimulatedDeviceBackend(capacity);
            Real = new CachingAllocator(Backend, settings, ownsBackend: true);
            Model = new ReferenceCachingAllocator(capacity, settings);
            _name = $"capacity {capacity}, \"{conf}\"";
        }

        public SimulatedDeviceBackend Backend { get; }
        public CachingAllocator Real { get; }
        public ReferenceCachingAllocator Model { get; }

        public Live? TryAlloc(long bytes, string tag, int stream, string where)
        {
            bool realOk = Real.TryAllocateBlock(bytes, tag, out var handle, stream);
            var block = Model.Allocate(bytes, tag, stream);
            if (realOk != block is not null)
                Assert.Fail($"{_name}, {where}: the model {(block is null ? "ran out of memory" : "succeeded")} but CachingAllocator {(realOk ? "succeeded" : "ran out of memory")}");
            if (block is null)
                return null;
            var info = Real.GetBlockInfo(handle);
            Same((block.Id, block.Address, block.Offset, block.Size, block.Requested, block.Stream, block.Segment.Address, block.Tag),
                (info.Id, info.Address, info.Offset, info.Size, info.RequestedBytes, info.Stream, info.Segment.Address, (string?)info.Tag),
                $"{where}: block (id, address, offset, size, requested, stream, segment, tag)");
            return new Live(handle, block);
        }

        public Live Alloc(long bytes, string tag, int stream = 0)
        {
            string where = $"alloc({bytes}, stream {stream})";
            var l = TryAlloc(bytes, tag, stream, where) ?? throw new InvalidOperationException($"{_name}, {where}: out of memory in a scenario that expects success");
            AssertSame(where);
            return l;
        }

        public void Free(Live l)
        {
            Real.FreeBlock(l.Real);
            Model.Free(l.Model);
        }

        public void AssertSame(string where)
        {
            Same(Model.ReservedBytes, Real.ReservedBytes, $"{where}: ReservedBytes");
            Same(Model.AllocatedBytes, Real.AllocatedBytes, $"{where}: AllocatedBytes");
            Same(Model.ReservedBytes, Backend.ReservedBytes, $"{where}: device reserved bytes");

            var expected = Flatten(Model.GetStatistics());
            var actual = Flatten(Real.GetStatistics());
            var diff = expected.Keys.Union(actual.Keys)
                .Where(k => !expected.TryGetValue(k, out long e) || !actual.TryGetValue(k, out long a) || e != a)
                .Select(k => $"{k}: model {Show(expected, k)}, CachingAllocator {Show(actual, k)}")
                .ToList();
            if (diff.Count > 0)
                Assert.Fail($"{_name}, {where}: statistics differ:\n  {string.Join("\n  ", diff)}");

            var modelSegments = Model.GetSnapshot();
            var realSegments = Real.GetSnapshot();
            Same(modelSegments.Count, realSegments.Count, $"{where}: segment count");
            for (int i = 0; i < modelSegments.Count; i++)
            {
                var (m, r) = (modelSegments[i], realSegments[i]);
                Same((m.Address, m.Size, m.IsSmallPool, m.Stream), (r.Address, r.Size, r.IsSmallPool, r.Stream), $"{where}: segment {i} (address, size, small, stream)");
                Same(Describe(m.Blocks), Describe(r.Blocks), $"{where}: blocks of segment {i} at 0x{m.Address:X}");
            }
        }

        public void Dispose() => Real.Dispose();

        private void Same<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                Assert.Fail($"{_name}, {what}: model {expected}, CachingAllocator {actual}");
        }

        private static string Show(Dictionary<string, long> d, string k) => d.TryGetValue(k, out long v) ? v.ToString() : "(absent)";

        private static string Describe(IReadOnlyList<BlockSnapshot> blocks) => string.Join(" | ", blocks);

        /// <summary>Every statistic as a flat name -> value map: the torch keys plus rounded bytes and per-tag values.</summary>
        private static Dictionary<string, long> Flatten(AllocatorStatistics s)
        {
            var d = new Dictionary<string, long>(s.ToTorchDictionary(), StringComparer.Ordinal);
            foreach (var (pool, p) in new[] { ("all", s.All), ("small_pool", s.SmallPool), ("large_pool", s.LargePool) })
                Add("rounded_bytes." + pool, p.RoundedBytes);
            foreach (var (tag, t) in s.Tags)
            {
                d[$"tag[{tag}].name"] = t.Tag == tag ? 1 : 0;
                Add($"tag[{tag}].allocation", t.Allocation);
                Add($"tag[{tag}].allocated_bytes", t.AllocatedBytes);
                Add($"tag[{tag}].requested_bytes", t.RequestedBytes);
            }
            return d;

            void Add(string name, StatValue v)
            {
                d[name + ".current"] = v.Current;
                d[name + ".peak"] = v.Peak;
                d[name + ".allocated"] = v.Allocated;
                d[name + ".freed"] = v.Freed;
            }
        }
    }
}
