using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ZImage.Runtime.Memory;

/// <summary>The kind of a trace event.</summary>
public enum AllocationTraceOp
{
    /// <summary>A block was allocated (<c>{"op":"alloc"}</c>).</summary>
    Alloc,

    /// <summary>A block was freed (<c>{"op":"free"}</c>).</summary>
    Free,
}

/// <summary>
/// One trace event. Value equality, so two traces compare event for event with <c>SequenceEqual</c>. Free events carry
/// <see cref="Size"/> 0 and no tag (the file format has only the id).
/// </summary>
/// <param name="Op">Alloc or free.</param>
/// <param name="Id">The allocation id.</param>
/// <param name="Size">Requested bytes (alloc) or 0 (free).</param>
/// <param name="Tag">The allocation tag, if recorded (alloc only).</param>
/// <param name="Stream">The stream (alloc only; 0 on the single-stream path).</param>
public readonly record struct AllocationTraceEvent(AllocationTraceOp Op, long Id, long Size, string? Tag = null, int Stream = 0)
{
    /// <summary>An alloc event.</summary>
    public static AllocationTraceEvent Alloc(long id, long size, string? tag = null, int stream = 0) => new(AllocationTraceOp.Alloc, id, size, tag, stream);

    /// <summary>A free event.</summary>
    public static AllocationTraceEvent Free(long id) => new(AllocationTraceOp.Free, id, 0);

    /// <summary>The JSON Lines form of this event.</summary>
    public string ToJsonLine()
    {
        var sb = new StringBuilder(80);
        if (Op == AllocationTraceOp.Alloc)
        {
            sb.Append("{\"op\":\"alloc\",\"id\":").Append(Id.ToString(CultureInfo.InvariantCulture))
              .Append(",\"size\":").Append(Size.ToString(CultureInfo.InvariantCulture))
              .Append(",\"stream\":").Append(Stream.ToString(CultureInfo.InvariantCulture));
            if (Tag is not null)
                sb.Append(",\"tag\":").Append(JsonSerializer.Serialize(Tag));
            sb.Append('}');
        }
        else
        {
            sb.Append("{\"op\":\"free\",\"id\":").Append(Id.ToString(CultureInfo.InvariantCulture)).Append('}');
        }
        return sb.ToString();
    }
}

/// <summary>
/// An allocation trace in memory (the <c>zimage-alloc-trace</c> JSON Lines format, version 1): the device size it was
/// recorded on and the events in order. Read with <see cref="TraceReader"/>, record with <see cref="AllocationTraceRecorder"/>,
/// replay with <see cref="TraceReplayer"/>.
/// </summary>
public sealed class AllocationTrace
{
    /// <summary>The value of the header's <c>format</c> key.</summary>
    public const string FormatName = "zimage-alloc-trace";

    /// <summary>The supported format version.</summary>
    public const int FormatVersion = 1;

    /// <summary>Creates a trace from events.</summary>
    public AllocationTrace(IEnumerable<AllocationTraceEvent> events, long? deviceBytes = null)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (deviceBytes is < 0)
            throw new ArgumentOutOfRangeException(nameof(deviceBytes), deviceBytes, "device_bytes must be >= 0 or null.");
        Events = events.ToArray();
        DeviceBytes = deviceBytes;
    }

    /// <summary>Capacity of the device the trace was recorded on (header <c>device_bytes</c>), or null.</summary>
    public long? DeviceBytes { get; }

    /// <summary>The events after the header, in order.</summary>
    public IReadOnlyList<AllocationTraceEvent> Events { get; }

    /// <summary>Whether both traces have the same events (op, id, size, tag, stream) in the same order; the header is not compared.</summary>
    public bool EventsEqual(AllocationTrace other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return FirstDifference(other) < 0;
    }

    /// <summary>The index of the first differing event (or the shorter length when one is a prefix), or -1 when equal.</summary>
    public int FirstDifference(AllocationTrace other)
    {
        ArgumentNullException.ThrowIfNull(other);
        int n = Math.Min(Events.Count, other.Events.Count);
        for (int i = 0; i < n; i++)
        {
            if (Events[i] != other.Events[i])
                return i;
        }
        return Events.Count == other.Events.Count ? -1 : n;
    }

    /// <summary>The header line.</summary>
    public static string HeaderLine(long? deviceBytes) =>
        $"{{\"format\":\"{FormatName}\",\"version\":{FormatVersion},\"device_bytes\":{(deviceBytes is { } d ? d.ToString(CultureInfo.InvariantCulture) : "null")}}}";

    /// <summary>Writes the trace as JSON Lines.</summary>
    public void WriteTo(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write(HeaderLine(DeviceBytes));
        writer.Write('\n');
        foreach (var e in Events)
        {
            writer.Write(e.ToJsonLine());
            writer.Write('\n');
        }
    }

    /// <summary>Writes the trace to a file.</summary>
    public void Save(string path)
    {
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false));
        WriteTo(writer);
    }

    /// <summary>Reads a trace file (see <see cref="TraceReader.ReadFile"/>).</summary>
    public static AllocationTrace Load(string path) => TraceReader.ReadFile(path);

    /// <inheritdoc />
    public override string ToString() => $"AllocationTrace({Events.Count} events, device_bytes {(DeviceBytes is { } d ? ByteSize.Format(d) : "null")})";
}

/// <summary>A trace file is malformed; the message names the line and the reason.</summary>
public sealed class TraceFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public TraceFormatException(string source, int lineNumber, string reason, Exception? inner = null)
        : base($"{source}:{lineNumber}: {reason}", inner)
    {
        Source = source;
        LineNumber = lineNumber;
        Reason = reason;
    }

    /// <summary>The file name (or "&lt;trace&gt;").</summary>
    public new string Source { get; }

    /// <summary>1-based line number.</summary>
    public int LineNumber { get; }

    /// <summary>What is wrong.</summary>
    public string Reason { get; }
}

/// <summary>Reads <c>zimage-alloc-trace</c> JSON Lines and refuses malformed traces with <see cref="TraceFormatException"/>. Unknown keys are ignored.</summary>
public static class TraceReader
{
    /// <summary>Reads a trace file.</summary>
    public static AllocationTrace ReadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var reader = new StreamReader(path, Encoding.UTF8);
        return Read(reader, Path.GetFileName(path));
    }

    /// <summary>Parses trace text.</summary>
    public static AllocationTrace Parse(string text, string source = "<trace>")
    {
        ArgumentNullException.ThrowIfNull(text);
        using var reader = new StringReader(text);
        return Read(reader, source);
    }

    /// <summary>Reads a trace; checks the header, every event's fields, and that frees name live ids and allocs fresh ones.</summary>
    public static AllocationTrace Read(TextReader reader, string source = "<trace>")
    {
        ArgumentNullException.ThrowIfNull(reader);
        int lineNumber = 0;
        string? line;
        long? deviceBytes = null;
        bool haveHeader = false;
        var events = new List<AllocationTraceEvent>();
        var live = new HashSet<long>();
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException ex)
            {
                throw new TraceFormatException(source, lineNumber, $"not valid JSON ({ex.Message})", ex);
            }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw new TraceFormatException(source, lineNumber, $"expected a JSON object, found {root.ValueKind}");
                if (!haveHeader)
                {
                    deviceBytes = ReadHeader(root, source, lineNumber);
                    haveHeader = true;
                    continue;
                }
                events.Add(ReadEvent(root, source, lineNumber, live));
            }
        }
        if (!haveHeader)
            throw new TraceFormatException(source, Math.Max(1, lineNumber), "empty trace: the first line must be the header {\"format\":\"zimage-alloc-trace\",\"version\":1,...}");
        return new AllocationTrace(events, deviceBytes);
    }

    private static long? ReadHeader(JsonElement root, string source, int line)
    {
        if (!root.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.String || format.GetString() != AllocationTrace.FormatName)
            throw new TraceFormatException(source, line, $"the first line must be a header with \"format\":\"{AllocationTrace.FormatName}\"");
        if (!root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out int v))
            throw new TraceFormatException(source, line, "header needs an integer \"version\"");
        if (v != AllocationTrace.FormatVersion)
            throw new TraceFormatException(source, line, $"unsupported version {v}; this reader supports version {AllocationTrace.FormatVersion}");
        if (!root.TryGetProperty("device_bytes", out var db) || db.ValueKind == JsonValueKind.Null)
            return null;
        if (db.ValueKind != JsonValueKind.Number || !db.TryGetInt64(out long bytes) || bytes <= 0)
            throw new TraceFormatException(source, line, $"header \"device_bytes\" must be a positive integer or null, found {db.GetRawText()}");
        return bytes;
    }

    private static AllocationTraceEvent ReadEvent(JsonElement root, string source, int line, HashSet<long> live)
    {
        if (!root.TryGetProperty("op", out var opElement) || opElement.ValueKind != JsonValueKind.String)
            throw new TraceFormatException(source, line, "event needs a string \"op\" (\"alloc\" or \"free\")");
        string op = opElement.GetString()!;
        long id = RequireLong(root, "id", source, line);
        switch (op)
        {
            case "alloc":
            {
                long size = RequireLong(root, "size", source, line);
                if ((ulong)size > CachingAllocator.MaxAllocationBytes)
                    throw new TraceFormatException(source, line, $"alloc size must be >= 0 and <= {CachingAllocator.MaxAllocationBytes} (4 EiB), found {size}");
                int stream = 0;
                if (root.TryGetProperty("stream", out var s) && s.ValueKind != JsonValueKind.Null && (s.ValueKind != JsonValueKind.Number || !s.TryGetInt32(out stream)))
                    throw new TraceFormatException(source, line, $"\"stream\" must be an integer, found {s.GetRawText()}");
                string? tag = null;
                if (root.TryGetProperty("tag", out var t) && t.ValueKind != JsonValueKind.Null)
                {
                    if (t.ValueKind != JsonValueKind.String)
                        throw new TraceFormatException(source, line, $"\"tag\" must be a string, found {t.GetRawText()}");
                    tag = t.GetString();
                }
                if (!live.Add(id))
                    throw new TraceFormatException(source, line, $"alloc of id {id}, which is still live (allocated earlier and not freed)");
                return AllocationTraceEvent.Alloc(id, size, tag, stream);
            }
            case "free":
                if (!live.Remove(id))
                    throw new TraceFormatException(source, line, $"free of id {id}, which is not live (never allocated, or already freed)");
                return AllocationTraceEvent.Free(id);
            default:
                throw new TraceFormatException(source, line, $"unknown op \"{op}\"; expected \"alloc\" or \"free\"");
        }
    }

    private static long RequireLong(JsonElement root, string name, string source, int line)
    {
        if (!root.TryGetProperty(name, out var e))
            throw new TraceFormatException(source, line, $"event is missing \"{name}\"");
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v))
            throw new TraceFormatException(source, line, $"\"{name}\" must be an integer, found {e.GetRawText()}");
        return v;
    }
}

/// <summary>
/// Records every alloc and free of an allocator: in memory (<see cref="Trace"/>) and, optionally, as JSON Lines to a
/// writer (header first). Dispose to detach (the writer is flushed, not closed).
/// </summary>
public sealed class AllocationTraceRecorder : IAllocationObserver, IDisposable
{
    private readonly List<AllocationTraceEvent> _events = [];
    private readonly TextWriter? _writer;
    private readonly bool _includeTags;
    private readonly IDisposable _subscription;
    private long _ooms;

    /// <summary>Attaches to <paramref name="allocator"/>.</summary>
    /// <param name="allocator">The allocator to observe.</param>
    /// <param name="writer">Optional JSON Lines sink; the header is written at once.</param>
    /// <param name="includeTags">Whether events carry their tag (in memory and in the file).</param>
    /// <param name="deviceBytes">Header <c>device_bytes</c>; default the backend's total (null for an unlimited simulated device).</param>
    public AllocationTraceRecorder(IBlockAllocator allocator, TextWriter? writer = null, bool includeTags = true, long? deviceBytes = null)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        _writer = writer;
        _includeTags = includeTags;
        if (deviceBytes is null)
        {
            long total = allocator.Backend.GetMemoryInfo().TotalBytes;
            deviceBytes = total >= SimulatedDeviceBackend.Unlimited ? null : total;
        }
        DeviceBytes = deviceBytes;
        if (_writer is not null)
        {
            _writer.Write(AllocationTrace.HeaderLine(DeviceBytes));
            _writer.Write('\n');
        }
        _subscription = allocator.Subscribe(this);
    }

    /// <summary>The header's device bytes.</summary>
    public long? DeviceBytes { get; }

    /// <summary>Requests that ended in out-of-memory while recording (they are not trace events).</summary>
    public long OomCount => Interlocked.Read(ref _ooms);

    /// <summary>A snapshot of the events recorded so far.</summary>
    public AllocationTrace Trace
    {
        get
        {
            lock (_events)
                return new AllocationTrace(_events, DeviceBytes);
        }
    }

    /// <inheritdoc />
    void IAllocationObserver.OnAlloc(long id, long size, long requestedBytes, string tag, int stream) =>
        Add(AllocationTraceEvent.Alloc(id, requestedBytes, _includeTags ? tag : null, stream));

    /// <inheritdoc />
    void IAllocationObserver.OnFree(long id) => Add(AllocationTraceEvent.Free(id));

    /// <inheritdoc />
    void IAllocationObserver.OnOom(long requestedBytes, string tag, int stream) => Interlocked.Increment(ref _ooms);

    /// <summary>Detaches and flushes the writer.</summary>
    public void Dispose()
    {
        _subscription.Dispose();
        lock (_events)
            _writer?.Flush();
    }

    private void Add(AllocationTraceEvent e)
    {
        lock (_events)
        {
            _events.Add(e);
            if (_writer is not null)
            {
                _writer.Write(e.ToJsonLine());
                _writer.Write('\n');
            }
        }
    }
}
