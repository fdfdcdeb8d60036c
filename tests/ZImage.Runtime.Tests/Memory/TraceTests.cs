using ZImage.Runtime.Memory;
using static ZImage.Runtime.Tests.Memory.AllocatorInvariants;

namespace ZImage.Runtime.Tests.Memory;

public class MalformedTraceTests
{
    private const string Header = "{\"format\":\"zimage-alloc-trace\",\"version\":1,\"device_bytes\":null}";

    [Theory]
    [InlineData("", 1, "empty trace")]
    [InlineData("{\"format\":\"other\",\"version\":1}", 1, "header")]
    [InlineData("{\"format\":\"zimage-alloc-trace\",\"version\":2}", 1, "unsupported version 2")]
    [InlineData("{\"format\":\"zimage-alloc-trace\",\"version\":1,\"device_bytes\":-4}", 1, "device_bytes")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":10", 2, "not valid JSON")]
    [InlineData(Header + "\n[1,2]", 2, "JSON object")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"size\":10}", 2, "missing \"id\"")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1}", 2, "missing \"size\"")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":\"big\"}", 2, "\"size\" must be an integer")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":-1}", 2, ">= 0")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":1,\"stream\":\"s\"}", 2, "\"stream\"")]
    [InlineData(Header + "\n{\"op\":\"resize\",\"id\":1}", 2, "unknown op")]
    [InlineData(Header + "\n{\"id\":1}", 2, "\"op\"")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":1}\n{\"op\":\"free\",\"id\":2}", 3, "free of id 2")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":1}\n{\"op\":\"free\",\"id\":1}\n{\"op\":\"free\",\"id\":1}", 4, "not live")]
    [InlineData(Header + "\n{\"op\":\"alloc\",\"id\":1,\"size\":1}\n{\"op\":\"alloc\",\"id\":1,\"size\":1}", 3, "still live")]
    public void RefusedWithLineNumberAndReason(string text, int line, string reason)
    {
        var ex = Assert.Throws<TraceFormatException>(() => TraceReader.Parse(text, "t.jsonl"));
        Assert.Equal(line, ex.LineNumber);
        Assert.Contains(reason, ex.Reason);
        Assert.StartsWith($"t.jsonl:{line}: ", ex.Message);
    }

    [Fact]
    public void UnknownKeysAndBlankLinesAreIgnored()
    {
        var trace = TraceReader.Parse(
            "{\"format\":\"zimage-alloc-trace\",\"version\":1,\"device_bytes\":1048576,\"meta\":{\"x\":1}}\n\n" +
            "{\"op\":\"alloc\",\"id\":7,\"size\":100,\"stream\":0,\"tag\":\"vae\",\"t_us\":5}\n{\"op\":\"free\",\"id\":7,\"extra\":[1]}\n");
        Assert.Equal(1048576, trace.DeviceBytes);
        Assert.Equal([AllocationTraceEvent.Alloc(7, 100, "vae"), AllocationTraceEvent.Free(7)], trace.Events);
    }
}

public class TraceRecordingTests
{
    [Fact]
    public void RecorderWritesJsonLinesThatReadBackEventForEvent()
    {
        var (_, a) = Create(64 * MiB);
        using var _a = a;
        var text = new StringWriter();
        AllocationTrace recorded;
        using (var recorder = new AllocationTraceRecorder(a, text))
        {
            var x = a.Allocate(1000, AllocationTags.Transformer);
            var y = a.AllocateBlock(3 * MiB, AllocationTags.Vae);
            x.Dispose();
            Assert.False(a.TryAllocateBlock(100 * MiB, "too-big", out _));
            a.FreeBlock(y);
            recorded = recorder.Trace;
            Assert.Equal(1, recorder.OomCount);
        }
        Assert.Equal(
            [
                AllocationTraceEvent.Alloc(1, 1000, AllocationTags.Transformer),
                AllocationTraceEvent.Alloc(2, 3 * MiB, AllocationTags.Vae),
                AllocationTraceEvent.Free(1),
                AllocationTraceEvent.Free(2),
            ],
            recorded.Events);
        string[] lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("{\"format\":\"zimage-alloc-trace\",\"version\":1,\"device_bytes\":67108864}", lines[0]);
        Assert.Equal("{\"op\":\"alloc\",\"id\":1,\"size\":1000,\"stream\":0,\"tag\":\"transformer\"}", lines[1]);
        Assert.Equal("{\"op\":\"free\",\"id\":1}", lines[3]);
        var read = TraceReader.Parse(text.ToString());
        Assert.True(read.EventsEqual(recorded));
        Assert.Equal(64 * MiB, read.DeviceBytes);
        Assert.Equal(-1, read.FirstDifference(recorded));
    }

    [Fact]
    public void TwoRunsOfTheSameProgramGiveEqualTracesAndADifferentOneIsLocated()
    {
        static AllocationTrace Run(IBlockAllocator a, bool variant)
        {
            using var recorder = new AllocationTraceRecorder(a);
            var h1 = a.AllocateBlock(5000, "a");
            var h2 = a.AllocateBlock(variant ? 6000 : 7000, "b");
            a.FreeBlock(h1);
            a.FreeBlock(h2);
            return recorder.Trace;
        }
        using var backend1 = new SimulatedDeviceBackend(ByteSize.GiB);
        using var backend2 = new SimulatedDeviceBackend(ByteSize.GiB);
        using var real = new CachingAllocator(backend1);
        using var planned = new NoCacheAllocator(backend2); // a different policy makes the same sequence
        var t1 = Run(real, false);
        Assert.True(t1.EventsEqual(Run(planned, false)));
        Assert.Equal(t1.Events, Run(new CachingAllocator(new SimulatedDeviceBackend(ByteSize.GiB), ownsBackend: true), false).Events);
        Assert.Equal(1, t1.FirstDifference(Run(new NoCacheAllocator(new SimulatedDeviceBackend(ByteSize.GiB), ownsBackend: true), true)));
    }
}

public class TraceReplayerTests
{
    private static AllocationTrace Trace(long? device, params AllocationTraceEvent[] events) => new(events, device);

    [Fact]
    public void OomIsCountedItsFreeSkippedAndReplayContinues()
    {
        var trace = Trace(30 * MiB,
            AllocationTraceEvent.Alloc(1, 12 * MiB),
            AllocationTraceEvent.Alloc(2, 20 * MiB),  // 12 + 20 > 30: OOM
            AllocationTraceEvent.Free(2),             // skipped
            AllocationTraceEvent.Alloc(3, 1000),
            AllocationTraceEvent.Free(1),
            AllocationTraceEvent.Alloc(4, 20 * MiB),  // still no room: the 12 MiB block is cached, released, then fits
            AllocationTraceEvent.Alloc(5, 20 * MiB)); // OOM again
        var r = TraceReplayer.Replay(trace);
        Assert.Equal(2, r.NumOoms);
        Assert.Equal(1, r.FirstOomEventIndex);
        Assert.Equal([new ReplayOomEvent(1, 2, 20 * MiB), new ReplayOomEvent(6, 5, 20 * MiB)], r.OomEvents);
        Assert.Equal(7, r.Events);
        Assert.Equal(1024 + 20 * MiB, r.FinalAllocatedBytes);
        Assert.Equal(22 * MiB, r.FinalReservedBytes);
        Assert.Equal(30 * MiB, r.DeviceBytes);
    }

    [Fact]
    public void NoCachePolicyCallsTheDeviceForEveryAllocAndFree()
    {
        var trace = Trace(null,
            AllocationTraceEvent.Alloc(1, 1000), AllocationTraceEvent.Free(1),
            AllocationTraceEvent.Alloc(2, 1000), AllocationTraceEvent.Alloc(3, 5 * MiB), AllocationTraceEvent.Free(2));
        var r = TraceReplayer.Replay(trace, b => new NoCacheAllocator(b));
        Assert.Equal("no-cache", r.Policy);
        Assert.Equal(3, r.NumDeviceAlloc);
        Assert.Equal(2, r.NumDeviceFree);
        Assert.Equal(5 * MiB, r.FinalReservedBytes);
        Assert.Equal(1024 + 5 * MiB, r.PeakReservedBytes);
        Assert.Equal(r.PeakAllocatedBytes, r.PeakReservedBytes);
        Assert.Null(r.FirstOomEventIndex);
    }

    [Fact]
    public void DeviceBytesOverrideTheHeader()
    {
        var trace = Trace(ByteSize.GiB, AllocationTraceEvent.Alloc(1, 100 * MiB));
        Assert.Equal(0, TraceReplayer.Replay(trace).NumOoms);
        Assert.Equal(1, TraceReplayer.Replay(trace, deviceBytes: 50 * MiB).NumOoms);
    }

    [Fact]
    public void JsonHasTheSnakeCaseFieldsOfTheCli()
    {
        var r = TraceReplayer.Replay(Trace(null, AllocationTraceEvent.Alloc(1, 1000)), AllocatorSettings.Parse("max_split_size_mb:128"));
        using var doc = System.Text.Json.JsonDocument.Parse(r.ToJson());
        var root = doc.RootElement;
        foreach (string key in new[] { "peak_allocated_bytes", "final_allocated_bytes", "peak_reserved_bytes", "final_reserved_bytes", "num_device_alloc",
                     "num_device_free", "num_alloc_retries", "num_ooms", "first_oom_event_index", "peak_segments", "final_segments", "events" })
            Assert.True(root.TryGetProperty(key, out _), key);
        Assert.Equal(1024, root.GetProperty("peak_allocated_bytes").GetInt64());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, root.GetProperty("first_oom_event_index").ValueKind);
        Assert.Equal("caching(max_split_size_mb:128)", root.GetProperty("policy").GetString());
        Assert.Contains(r.ToRows(), row => row.Name == "num_ooms" && row.Value == "0");
    }
}
