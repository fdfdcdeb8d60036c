using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace ZImage.Runtime.Models.Safetensors;

/// <summary>
/// One <c>.safetensors</c> file, validated on open and read through a read-only memory mapping. Layout: u64
/// little-endian header length N, N bytes of UTF-8 JSON (<c>{"__metadata__":{...}, name: {"dtype","shape","data_offsets"}}</c>),
/// then the raw data section. Open checks that the header length is bounded, the header is valid UTF-8 and well-formed
/// JSON whose strings are all readable (no escaped lone surrogate), every dtype is known, every shape × element size equals its byte span, and, as the reference implementation
/// does, that the spans cover the data section exactly: contiguous from offset 0, with no hole between tensors and no
/// trailing bytes after the last one.
/// </summary>
public sealed unsafe class SafetensorsFile : ISafetensorsReader
{
    /// <summary>Default upper bound for the JSON header (100 MB, as the reference Rust implementation uses).</summary>
    public const long DefaultMaxHeaderBytes = 100_000_000;

    private readonly Dictionary<string, SafetensorsTensorInfo> _tensors;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _dataStart;
    private bool _disposed;

    private SafetensorsFile(string path, long headerLength, long dataLength, Dictionary<string, SafetensorsTensorInfo> tensors,
        IReadOnlyDictionary<string, string> metadata, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* dataStart)
    {
        FilePath = path;
        HeaderLength = headerLength;
        DataLength = dataLength;
        _tensors = tensors;
        Metadata = metadata;
        _map = map;
        _view = view;
        _dataStart = dataStart;
        TensorNames = tensors.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>Length N of the JSON header in bytes (the data section starts at 8 + N).</summary>
    public long HeaderLength { get; }

    /// <summary>Length of the data section in bytes.</summary>
    public long DataLength { get; }

    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>All header entries by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors => _tensors;

    /// <summary>Opens and validates <paramref name="path"/>, then maps it read-only.</summary>
    /// <param name="path">The file.</param>
    /// <param name="maxHeaderBytes">Largest accepted header length (guards against reading a huge bogus length).</param>
    /// <exception cref="SafetensorsFormatException">The file is truncated or its header is invalid.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafetensorsFile Open(string path, long maxHeaderBytes = DefaultMaxHeaderBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (maxHeaderBytes < 2)
            throw new ArgumentOutOfRangeException(nameof(maxHeaderBytes), maxHeaderBytes, "The header limit must be at least 2 bytes (the JSON '{}').");
        path = Path.GetFullPath(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        try
        {
            long fileLength = stream.Length;
            if (fileLength < 8)
                throw new SafetensorsFormatException(path, null, $"the file has {fileLength} bytes, fewer than the 8-byte header length prefix (truncated).");
            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            ulong rawHeaderLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (rawHeaderLength < 2 || rawHeaderLength > (ulong)maxHeaderBytes)
                throw new SafetensorsFormatException(path, null, $"header length {rawHeaderLength} is outside the allowed range [2, {maxHeaderBytes}].");
            long headerLength = (long)rawHeaderLength;
            if (8 + headerLength > fileLength)
                throw new SafetensorsFormatException(path, null, $"header length {headerLength} runs past the end of the {fileLength}-byte file (truncated).");
            var header = new byte[headerLength];
            stream.ReadExactly(header);
            long dataLength = fileLength - 8 - headerLength;
            (Dictionary<string, SafetensorsTensorInfo> tensors, Dictionary<string, string> metadata) = ParseHeader(path, header, dataLength);

            MemoryMappedFile? map = null;
            MemoryMappedViewAccessor? view = null;
            byte* basePtr = null;
            if (dataLength > 0)
            {
                try
                {
                    map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                    view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                    view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
                }
                catch
                {
                    view?.Dispose();
                    map?.Dispose();
                    throw;
                }
                basePtr += view.PointerOffset + 8 + headerLength;
            }
            else
            {
                stream.Dispose();
            }
            return new SafetensorsFile(path, headerLength, dataLength, tensors, metadata, map, view, basePtr);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <inheritdoc />
    public SafetensorsTensorInfo GetInfo(string name) =>
        _tensors.TryGetValue(name, out SafetensorsTensorInfo? info) ? info : throw new KeyNotFoundException($"Tensor '{name}' is not in '{FilePath}'.");

    /// <inheritdoc />
    public bool TryGetInfo(string name, [NotNullWhen(true)] out SafetensorsTensorInfo? info) => _tensors.TryGetValue(name, out info);

    /// <inheritdoc />
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        SafetensorsTensorInfo info = GetInfo(name);
        if (info.ByteLength == 0) return ReadOnlySpan<byte>.Empty;
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException($"Tensor '{name}' in '{FilePath}' has {info.ByteLength} bytes; a single span holds at most {int.MaxValue}.");
        return new ReadOnlySpan<byte>(_dataStart + info.DataOffset, (int)info.ByteLength);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"{FilePath} ({_tensors.Count} tensors)";

    private static (Dictionary<string, SafetensorsTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new SafetensorsFormatException(path, null, $"the header is not valid UTF-8 (first invalid byte at header offset {FirstInvalidUtf8(header)}).");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new SafetensorsFormatException(path, null, $"the header is not valid JSON ({ex.Message}).", ex);
        }
        if (JsonStrings.TryFindUnreadableString(header, new JsonReaderOptions { MaxDepth = 8 }, out long offset, out string problem))
        {
            doc.Dispose();
            throw new SafetensorsFormatException(path, null, JsonStrings.Describe(offset, problem) + ".");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, null, $"the header JSON is a {doc.RootElement.ValueKind}, not an object.");
            var tensors = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (JsonProperty prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (sawMetadata) throw new SafetensorsFormatException(path, null, "'__metadata__' appears twice.");
                    sawMetadata = true;
                    ParseMetadata(path, prop.Value, metadata);
                    continue;
                }
                if (tensors.ContainsKey(prop.Name))
                    throw new SafetensorsFormatException(path, prop.Name, "the tensor appears twice in the header.");
                tensors.Add(prop.Name, ParseEntry(path, prop.Name, prop.Value, dataLength));
            }
            CheckCoverage(path, tensors.Values, dataLength);
            return (tensors, metadata);
        }
    }

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, null, $"'__metadata__' is a {value.ValueKind}, not an object of strings.");
        foreach (JsonProperty m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsFormatException(path, null, $"'__metadata__' entry '{m.Name}' is a {m.Value.ValueKind}, not a string.");
            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static SafetensorsTensorInfo ParseEntry(string path, string name, JsonElement entry, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, name, $"the header entry is a {entry.ValueKind}, not an object.");
        if (!entry.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(path, name, "missing string field 'dtype'.");
        string? dtypeText = dtypeElement.GetString();
        if (!SafetensorsDTypeExtensions.TryParse(dtypeText, out SafetensorsDType dtype))
            throw new SafetensorsFormatException(path, name, $"unsupported dtype '{dtypeText}'; allowed: {string.Join(", ", Enum.GetNames<SafetensorsDType>())}.");

        if (!entry.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(path, name, "missing array field 'shape'.");
        var shape = new int[shapeElement.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (JsonElement d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0 || dim > int.MaxValue)
                throw new SafetensorsFormatException(path, name, $"shape entry {i} ({d.GetRawText()}) is not an integer in [0, {int.MaxValue}].");
            shape[i++] = (int)dim;
            try { elements = checked(elements * dim); }
            catch (OverflowException) { throw new SafetensorsFormatException(path, name, $"shape {SafetensorsTensorInfo.FormatShape(shape)} overflows a 64-bit element count."); }
        }

        if (!entry.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new SafetensorsFormatException(path, name, "missing field 'data_offsets' = [begin, end].");
        if (offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new SafetensorsFormatException(path, name, $"data_offsets {offsets.GetRawText()} are not integers with 0 <= begin <= end.");
        if (end > dataLength)
            throw new SafetensorsFormatException(path, name, $"data_offsets [{begin}, {end}] run past the end of the {dataLength}-byte data section (truncated or corrupt).");
        long expectedBytes;
        try { expectedBytes = checked(elements * dtype.ElementSize()); }
        catch (OverflowException) { throw new SafetensorsFormatException(path, name, $"shape {SafetensorsTensorInfo.FormatShape(shape)} {dtype} overflows a 64-bit byte count."); }
        if (expectedBytes != end - begin)
            throw new SafetensorsFormatException(path, name, $"shape {SafetensorsTensorInfo.FormatShape(shape)} {dtype} needs {expectedBytes} bytes but data_offsets [{begin}, {end}] span {end - begin}.");
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end - begin, path);
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed) != System.Buffers.OperationStatus.Done)
                return i;
            i += consumed;
        }
        return -1;
    }

    // The reference rule (safetensors' validate): sorted by (begin, end), each span starts where the previous ended,
    // starting at 0, and the last one ends at the end of the data section.
    private static void CheckCoverage(string path, IEnumerable<SafetensorsTensorInfo> tensors, long dataLength)
    {
        long expected = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (SafetensorsTensorInfo t in tensors.OrderBy(t => t.DataOffset).ThenBy(t => t.ByteLength))
        {
            long end = t.DataOffset + t.ByteLength;
            if (t.DataOffset < expected)
                throw new SafetensorsFormatException(path, t.Name,
                    $"data_offsets [{t.DataOffset}, {end}] overlap tensor '{previous!.Name}' at [{previous.DataOffset}, {previous.DataOffset + previous.ByteLength}].");
            if (t.DataOffset > expected)
                throw new SafetensorsFormatException(path, t.Name,
                    $"data_offsets [{t.DataOffset}, {end}] leave a hole of {t.DataOffset - expected} bytes at [{expected}, {t.DataOffset}] of the data section; " +
                    "tensors must cover it contiguously from offset 0.");
            expected = end;
            previous = t;
        }
        if (expected != dataLength)
            throw new SafetensorsFormatException(path, null,
                $"the data section has {dataLength - expected} trailing bytes after the last tensor ends at offset {expected} of {dataLength}; tensors must cover it exactly.");
    }
}
