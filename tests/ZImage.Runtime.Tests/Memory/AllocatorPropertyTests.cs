using CsCheck;
using ZImage.Runtime.Memory;
using static ZImage.Runtime.Tests.Memory.AllocatorInvariants;

namespace ZImage.Runtime.Tests.Memory;

/// <summary>Random op sequences against the invariants of <see cref="AllocatorInvariants.Check"/>.</summary>
public class AllocatorPropertyTests
{
    private enum OpKind { Alloc, Free, EmptyCache, InjectOom, InjectError }

    private readonly record struct Op(OpKind Kind, long Size, int Pick);

    private static readonly Gen<long> Size = Gen.Frequency(
        (5, (IGen<long>)Gen.Long[1, 4096]),
        (4, Gen.Long[4096, MiB + 4096]),
        (3, Gen.Long[MiB, 12 * MiB]),
        (2, Gen.Long[12 * MiB, 120 * MiB]));

    private static readonly Gen<OpKind> Kind = Gen.Frequency(
        (55, (IGen<OpKind>)Gen.Const(OpKind.Alloc)),
        (35, Gen.Const(OpKind.Free)),
        (3, Gen.Const(OpKind.EmptyCache)),
        (4, Gen.Const(OpKind.InjectOom)),
        (3, Gen.Const(OpKind.InjectError)));

    private static readonly Gen<Op> OpGen = Gen.Select(Kind, Size, Gen.Int[0, 1000], (k, s, p) => new Op(k, s, p));

    private static readonly Gen<(long Capacity, string Conf, Op[] Ops)> Scenario = Gen.Select(
        Gen.OneOf(48 * MiB, 200 * MiB, ByteSize.GiB),
        Gen.OneOf("", "max_split_size_mb:40", "roundup_power2_divisions:4", "max_split_size_mb:64,roundup_power2_divisions:[2:2,>:8]",
            "garbage_collection_threshold:0.6,per_process_memory_fraction:0.8"),
        OpGen.Array[1, 120]);

    private static long _retriesSeen;
    private static long _oomsSeen;
    private static long _faultsSeen;

    [Fact]
    public void RandomSequencesKeepEveryInvariantAndDrainToZero()
    {
        Scenario.Sample(s =>
        {
            var (backend, a) = Create(s.Capacity, s.Conf);
            using var _a = a;
            var live = new List<BlockHandle>();
            long expectedOoms = 0;
            foreach (var op in s.Ops)
            {
                switch (op.Kind)
                {
                    case OpKind.Alloc:
                        try
                        {
                            if (a.TryAllocateBlock(op.Size, "p" + (op.Pick % 3), out var h))
                                live.Add(h);
                            else
                                expectedOoms++;
                        }
                        catch (InjectedDeviceFaultException)
                        {
                            Interlocked.Increment(ref _faultsSeen);
                        }
                        break;
                    case OpKind.Free when live.Count > 0:
                        int k = op.Pick % live.Count;
                        a.FreeBlock(live[k]);
                        Assert.False(a.IsLive(live[k]));
                        live.RemoveAt(k);
                        break;
                    case OpKind.EmptyCache:
                        a.EmptyCache();
                        Assert.Equal(0, a.GetSnapshot().Count(seg => seg.Blocks.Count == 1 && !seg.Blocks[0].IsAllocated));
                        break;
                    case OpKind.InjectOom:
                        backend.InjectFaults(new DeviceFaultInjection { FailNthAllocation = 1 + op.Pick % 2 });
                        break;
                    case OpKind.InjectError:
                        backend.InjectFaults(new DeviceFaultInjection { FailureProbability = 0.5, Seed = op.Pick, Kind = DeviceFaultKind.Error });
                        break;
                }
                Check(a, backend, live);
            }
            var stats = a.GetStatistics();
            Assert.Equal(expectedOoms, stats.NumOoms);
            Interlocked.Add(ref _retriesSeen, stats.NumAllocRetries);
            Interlocked.Add(ref _oomsSeen, stats.NumOoms);

            backend.InjectFaults(null);
            foreach (var h in live)
                a.FreeBlock(h);
            Check(a, backend, []);
            Assert.Equal(0, a.AllocatedBytes);
            Assert.Equal(0, a.GetStatistics().InactiveSplitBytes.Current); // everything merged back
            a.EmptyCache();
            Assert.Equal(0, a.ReservedBytes);
            Assert.Equal(0, backend.ReservedBytes);
            Assert.Equal(0, a.GetStatistics().Segment.Current);
        }, iter: 300, threads: 1);

        // The generators are tuned so that the rare paths actually run.
        Assert.True(_retriesSeen > 0, "no sample exercised the release-and-retry path");
        Assert.True(_oomsSeen > 0, "no sample ran out of memory");
        Assert.True(_faultsSeen > 0, "no sample hit an injected device error");
    }

    [Fact]
    public void ReplayOfARecordedSequenceReproducesTheStatistics()
    {
        Gen.Select(Gen.OneOf("", "max_split_size_mb:40"), OpGen.Array[1, 80]).Sample(s =>
        {
            var (_, a) = Create(300 * MiB, s.Item1);
            using var _a = a;
            using var recorder = new AllocationTraceRecorder(a);
            var live = new List<BlockHandle>();
            foreach (var op in s.Item2)
            {
                if (op.Kind == OpKind.Free && live.Count > 0)
                {
                    a.FreeBlock(live[op.Pick % live.Count]);
                    live.RemoveAt(op.Pick % live.Count);
                }
                else if (op.Kind == OpKind.Alloc && a.TryAllocateBlock(op.Size, "r", out var h))
                {
                    live.Add(h);
                }
            }
            var direct = a.GetStatistics();
            var replay = TraceReplayer.Replay(recorder.Trace, AllocatorSettings.Parse(s.Item1), direct.NumOoms == 0 ? 300 * MiB : SimulatedDeviceBackend.Unlimited);
            // Recorded traces hold only successful allocations, so replay matches whenever nothing failed.
            if (direct.NumOoms == 0)
            {
                Assert.Equal(direct.AllocatedBytes.Peak, replay.PeakAllocatedBytes);
                Assert.Equal(direct.ReservedBytes.Peak, replay.PeakReservedBytes);
                Assert.Equal(direct.ReservedBytes.Current, replay.FinalReservedBytes);
                Assert.Equal(direct.NumDeviceAlloc, replay.NumDeviceAlloc);
                Assert.Equal(direct.NumDeviceFree, replay.NumDeviceFree);
                Assert.Equal(direct.AllocatedBytes.Current, replay.FinalAllocatedBytes);
            }
            // A failed request released cache in the direct run but is absent from the trace, so block choices may
            // differ afterwards; the requested bytes of the surviving allocations still agree.
            Assert.Equal(direct.RequestedBytes.Current, replay.Statistics.RequestedBytes.Current);
        }, iter: 100, threads: 1);
    }
}
