using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace ZImage.Runtime.Models.Safetensors;

/// <summary>
/// The weights of one model component: a single <c>.safetensors</c> file or a sharded set described by a
/// <c>*.safetensors.index.json</c> (<c>{"metadata":{...},"weight_map":{tensor: shard file}}</c>). The weight map is
/// authoritative: every mapped tensor must exist in its shard (other tensors a shard may hold are not exposed).
/// </summary>
public sealed class SafetensorsCheckpoint : ISafetensorsReader
{
    private readonly Dictionary<string, SafetensorsFile> _owner;
    private readonly SafetensorsFile[] _files;
    private bool _disposed;

    private SafetensorsCheckpoint(string sourcePath, string? indexPath, SafetensorsFile[] files, Dictionary<string, SafetensorsFile> owner)
    {
        SourcePath = sourcePath;
        IndexPath = indexPath;
        _files = files;
        _owner = owner;
        TensorNames = owner.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>What was opened: the folder, the index file or the single file.</summary>
    public string SourcePath { get; }

    /// <summary>The shard index, or null for a single-file checkpoint.</summary>
    public string? IndexPath { get; }

    /// <summary>True when the weights come from several shards.</summary>
    public bool IsSharded => IndexPath is not null;

    /// <summary>The open files (one per shard).</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <inheritdoc />
    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>Total payload bytes of the exposed tensors.</summary>
    public long TotalBytes => _owner.Sum(kv => kv.Value.Tensors[kv.Key].ByteLength);

    /// <summary>
    /// Opens a component. <paramref name="path"/> may be a <c>.safetensors</c> file, a <c>.index.json</c> file, or a
    /// folder holding exactly one <c>*.safetensors.index.json</c> or, failing that, exactly one <c>*.safetensors</c>.
    /// </summary>
    /// <exception cref="SafetensorsFormatException">A file or the index is invalid, or a shard is missing.</exception>
    /// <exception cref="FileNotFoundException">Nothing usable is at <paramref name="path"/>.</exception>
    public static SafetensorsCheckpoint Open(string path, long maxHeaderBytes = SafetensorsFile.DefaultMaxHeaderBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = Path.GetFullPath(path);
        if (Directory.Exists(path))
        {
            string[] indexes = Directory.GetFiles(path, "*.safetensors.index.json");
            if (indexes.Length > 1)
                throw new FileNotFoundException($"Folder '{path}' holds {indexes.Length} shard indexes ({string.Join(", ", indexes.Select(Path.GetFileName))}); open one of them explicitly.");
            if (indexes.Length == 1) return OpenIndex(indexes[0], path, maxHeaderBytes);
            string[] singles = Directory.GetFiles(path, "*.safetensors");
            if (singles.Length != 1)
                throw new FileNotFoundException(singles.Length == 0
                    ? $"Folder '{path}' holds no *.safetensors file and no *.safetensors.index.json."
                    : $"Folder '{path}' holds {singles.Length} *.safetensors files ({string.Join(", ", singles.Select(Path.GetFileName))}) but no shard index; open one explicitly.");
            return OpenSingle(singles[0], path, maxHeaderBytes);
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"No safetensors file, index or folder at '{path}'.", path);
        return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path, path, maxHeaderBytes) : OpenSingle(path, path, maxHeaderBytes);
    }

    private static SafetensorsCheckpoint OpenSingle(string file, string source, long maxHeaderBytes)
    {
        SafetensorsFile f = SafetensorsFile.Open(file, maxHeaderBytes);
        var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (string name in f.TensorNames) owner[name] = f;
        return new SafetensorsCheckpoint(source, null, [f], owner);
    }

    private static SafetensorsCheckpoint OpenIndex(string indexPath, string source, long maxHeaderBytes)
    {
        Dictionary<string, string> weightMap = ReadWeightMap(indexPath);
        string folder = Path.GetDirectoryName(indexPath)!;
        var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach ((string tensor, string shard) in weightMap.OrderBy(kv => kv.Value, StringComparer.Ordinal))
            {
                if (!opened.TryGetValue(shard, out SafetensorsFile? file))
                {
                    string shardPath = Path.Combine(folder, shard);
                    if (!File.Exists(shardPath))
                        throw new SafetensorsFormatException(indexPath, tensor, $"shard '{shard}' named in the weight_map does not exist in '{folder}'.");
                    file = SafetensorsFile.Open(shardPath, maxHeaderBytes);
                    opened.Add(shard, file);
                }
                if (!file.Contains(tensor))
                    throw new SafetensorsFormatException(indexPath, tensor, $"the weight_map places the tensor in shard '{shard}', which does not contain it.");
                owner.Add(tensor, file);
            }
            return new SafetensorsCheckpoint(source, indexPath, opened.Values.ToArray(), owner);
        }
        catch
        {
            foreach (SafetensorsFile f in opened.Values) f.Dispose();
            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            byte[] bytes = File.ReadAllBytes(indexPath);
            // Editors on Windows like to prepend a UTF-8 BOM; JsonDocument rejects it.
            int start = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
            if (!System.Text.Unicode.Utf8.IsValid(bytes.AsSpan(start)))
                throw new SafetensorsFormatException(indexPath, null, "the shard index is not valid UTF-8.");
            doc = JsonDocument.Parse(bytes.AsMemory(start));
            if (JsonStrings.TryFindUnreadableString(bytes.AsSpan(start), default, out long offset, out string problem))
            {
                doc.Dispose();
                throw new SafetensorsFormatException(indexPath, null, $"the shard index: {JsonStrings.Describe(offset, problem)}.");
            }
        }
        catch (JsonException ex)
        {
            throw new SafetensorsFormatException(indexPath, null, $"the shard index is not valid JSON ({ex.Message}).", ex);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(indexPath, null, "the shard index has no 'weight_map' object.");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String || p.Value.GetString() is not { Length: > 0 } shard)
                    throw new SafetensorsFormatException(indexPath, p.Name, "the weight_map entry is not a non-empty file name.");
                // A shard name must stay inside the component folder; an index must not point the loader elsewhere.
                if (shard != Path.GetFileName(shard) || shard is "." or "..")
                    throw new SafetensorsFormatException(indexPath, p.Name, $"shard name '{shard}' is not a plain file name in the index's folder.");
                if (!result.TryAdd(p.Name, shard))
                    throw new SafetensorsFormatException(indexPath, p.Name, "the tensor appears twice in the weight_map.");
            }
            return result;
        }
    }

    /// <inheritdoc />
    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <inheritdoc />
    public SafetensorsTensorInfo GetInfo(string name) =>
        _owner.TryGetValue(name, out SafetensorsFile? f) ? f.Tensors[name] : throw new KeyNotFoundException($"Tensor '{name}' is not in '{SourcePath}'.");

    /// <inheritdoc />
    public bool TryGetInfo(string name, [NotNullWhen(true)] out SafetensorsTensorInfo? info)
    {
        if (_owner.TryGetValue(name, out SafetensorsFile? f))
        {
            info = f.Tensors[name];
            return true;
        }
        info = null;
        return false;
    }

    /// <inheritdoc />
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _owner.TryGetValue(name, out SafetensorsFile? f) ? f.GetBytes(name) : throw new KeyNotFoundException($"Tensor '{name}' is not in '{SourcePath}'.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (SafetensorsFile f in _files) f.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"{SourcePath} ({_owner.Count} tensors in {_files.Length} file(s))";
}
