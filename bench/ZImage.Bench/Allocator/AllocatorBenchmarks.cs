using System.Buffers;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using ZImage.Runtime.Memory;

namespace ZImage.Bench.Allocator;

/// <summary>
/// Replays each trace through each policy on an 80 GiB simulated device, reusing one allocator across invocations (the
/// steady state of a denoising loop). Reports ns per alloc+free pair, managed allocations (MemoryDiagnoser), and, in extra
/// columns computed in the host process, device calls per pair in steady state and peak reserved / allocated.
/// ArrayPool replays the same sizes with <see cref="ArrayPool{T}.Shared"/> Rent/Return as the managed baseline.
/// The allocator's lock is biased to the benchmark thread after its first 1024 acquisitions (one replay), so warm-up
/// reaches the steady state a device thread sees. Run out of process (the default; <c>--job medium</c> for figures worth
/// quoting): with <c>--inProcess</c> every case shares one JIT-compiled benchmark method and its profile.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class AllocatorBenchmarks
{
    private Event[] _events = [];
    private BlockHandle[] _handles = [];
    private byte[][] _arrays = [];
    private IBlockAllocator? _allocator;
    private SimulatedDeviceBackend? _backend;

    /// <summary>The trace.</summary>
    [Params("Diffusion", "RandomMixed")]
    public string Trace { get; set; } = "Diffusion";

    /// <summary>The policy.</summary>
    [Params("ArrayPool", "NoCache", "Caching", "CachingMaxSplit128")]
    public string Policy { get; set; } = "Caching";

    /// <summary>Builds the flat event array and the allocator.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _events = Flatten(BenchTraces.Get(Trace), out int slots);
        _handles = new BlockHandle[slots];
        _arrays = new byte[slots][];
        if (Policy != "ArrayPool")
        {
            _backend = new SimulatedDeviceBackend(80 * ByteSize.GiB);
            _allocator = Create(Policy, _backend);
        }
    }

    /// <summary>Disposes the allocator.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _allocator?.Dispose();
        _backend?.Dispose();
    }

    /// <summary>One full replay of the trace: <see cref="BenchTraces.Pairs"/> alloc+free pairs.</summary>
    /// <remarks>
    /// Each policy replays through its own loop on the concrete sealed type, as the ArrayPool loop calls the sealed
    /// <see cref="ArrayPool{T}.Shared"/>: with <c>--inProcess</c> all cases share one JIT-compiled benchmark method, and a
    /// single interface call site would turn polymorphic and charge the later policies a dispatch the baseline never pays.
    /// </remarks>
    [Benchmark(OperationsPerInvoke = BenchTraces.Pairs)]
    public void AllocFreePair()
    {
        switch (_allocator)
        {
            case CachingAllocator caching:
                ReplayCaching(caching);
                break;
            case NoCacheAllocator noCache:
                ReplayNoCache(noCache);
                break;
            default:
                ReplayArrayPool();
                break;
        }
    }

    private void ReplayCaching(CachingAllocator a)
    {
        var events = _events;
        var handles = _handles;
        for (int i = 0; i < events.Length; i++)
        {
            ref readonly Event e = ref events[i];
            if (e.Size >= 0)
                handles[e.Slot] = a.AllocateBlock(e.Size, AllocationTags.Transformer);
            else
                a.FreeBlock(handles[e.Slot]);
        }
    }

    private void ReplayNoCache(NoCacheAllocator a)
    {
        var events = _events;
        var handles = _handles;
        for (int i = 0; i < events.Length; i++)
        {
            ref readonly Event e = ref events[i];
            if (e.Size >= 0)
                handles[e.Slot] = a.AllocateBlock(e.Size, AllocationTags.Transformer);
            else
                a.FreeBlock(handles[e.Slot]);
        }
    }

    private void ReplayArrayPool()
    {
        var events = _events;
        var pool = ArrayPool<byte>.Shared;
        var arrays = _arrays;
        for (int i = 0; i < events.Length; i++)
        {
            ref readonly Event e = ref events[i];
            if (e.Size >= 0)
                arrays[e.Slot] = pool.Rent((int)e.Size);
            else
                pool.Return(arrays[e.Slot]);
        }
    }

    internal static IBlockAllocator Create(string policy, IDeviceMemoryBackend backend) => policy switch
    {
        "NoCache" => new NoCacheAllocator(backend),
        "Caching" => new CachingAllocator(backend),
        "CachingMaxSplit128" => new CachingAllocator(backend, AllocatorSettings.Parse("max_split_size_mb:128")),
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "NoCache, Caching or CachingMaxSplit128."),
    };

    /// <summary>Maps trace ids to dense slots; Size &lt; 0 marks a free.</summary>
    private static Event[] Flatten(AllocationTrace trace, out int slots)
    {
        var slotOf = new Dictionary<long, int>();
        var freeSlots = new Stack<int>();
        int next = 0;
        var result = new Event[trace.Events.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var e = trace.Events[i];
            if (e.Op == AllocationTraceOp.Alloc)
            {
                int s = freeSlots.Count > 0 ? freeSlots.Pop() : next++;
                slotOf[e.Id] = s;
                result[i] = new Event(e.Size, s);
            }
            else
            {
                int s = slotOf[e.Id];
                freeSlots.Push(s);
                result[i] = new Event(-1, s);
            }
        }
        slots = next;
        return result;
    }

    private readonly record struct Event(long Size, int Slot);

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new ReplayColumn("DevCalls/pair", r => r.SteadyDeviceCallsPerPair.ToString("0.###", CultureInfo.InvariantCulture)));
            AddColumn(new ReplayColumn("PeakReserved", r => ByteSize.Format(r.First.PeakReservedBytes)));
            AddColumn(new ReplayColumn("PeakAllocated", r => ByteSize.Format(r.First.PeakAllocatedBytes)));
            AddColumn(new ReplayColumn("Reserved/Alloc", r => (r.First.PeakReservedBytes / (double)r.First.PeakAllocatedBytes).ToString("0.00", CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>Replay statistics: the first pass (peaks) and device calls per pair on a second pass over the warm allocator.</summary>
    internal sealed record ReplayFigures(ReplayResult First, double SteadyDeviceCallsPerPair)
    {
        private static readonly Dictionary<(string, string), ReplayFigures> Cache = [];

        public static ReplayFigures? For(string trace, string policy)
        {
            if (policy == "ArrayPool")
                return null;
            lock (Cache)
            {
                if (Cache.TryGetValue((trace, policy), out var f))
                    return f;
                var t = BenchTraces.Get(trace);
                using var backend = new SimulatedDeviceBackend(80 * ByteSize.GiB);
                using var allocator = Create(policy, backend);
                var first = TraceReplayer.Replay(t, allocator, backend.CapacityBytes);
                var second = TraceReplayer.Replay(t, allocator, backend.CapacityBytes);
                double calls = (second.NumDeviceAlloc + second.NumDeviceFree - first.NumDeviceAlloc - first.NumDeviceFree) / (double)BenchTraces.Pairs;
                return Cache[(trace, policy)] = new ReplayFigures(first, calls);
            }
        }
    }

    private sealed class ReplayColumn(string name, Func<ReplayFigures, string> value) : FigureColumn("Replay." + name, name, name switch
    {
        "DevCalls/pair" => "Device allocs+frees per alloc/free pair on a second (warm) replay",
        "PeakReserved" => "Peak reserved bytes (segments) of the first replay",
        "PeakAllocated" => "Peak allocated bytes of the first replay",
        _ => "Peak reserved / peak allocated",
    })
    {
        protected override string Value(BenchmarkCase benchmarkCase)
        {
            string trace = (string)benchmarkCase.Parameters["Trace"];
            string policy = (string)benchmarkCase.Parameters["Policy"];
            return ReplayFigures.For(trace, policy) is { } f ? value(f) : "-";
        }
    }
}
