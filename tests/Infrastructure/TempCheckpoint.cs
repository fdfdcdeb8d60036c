using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// A writable copy of the tiny checkpoint in a temporary folder (deleted on dispose), for tests that corrupt it: delete,
/// overwrite or truncate files, drop or reshape a tensor keeping the safetensors layout valid, poison weights with NaN.
/// </summary>
public sealed class TempCheckpoint : IDisposable
{
    private TempCheckpoint(string dir) => Dir = dir;

    /// <summary>The copy's folder.</summary>
    public string Dir { get; }

    /// <summary>Copies <see cref="FixturePaths.TinyCheckpoint"/>.</summary>
    public static TempCheckpoint CopyOfTiny() => Mirror(link: false);

    /// <summary>
    /// Mirrors <see cref="FixturePaths.TinyCheckpoint"/> as symbolic links: nearly free to make. Every helper here
    /// replaces a link by a private copy before it writes (see <see cref="Own"/>), so the shared fixture is never changed.
    /// </summary>
    public static TempCheckpoint LinkedCopyOfTiny() => Mirror(link: true);

    private static TempCheckpoint Mirror(bool link)
    {
        string dir = Path.Combine(Path.GetTempPath(), "zimage-ckpt-" + Guid.NewGuid().ToString("N"));
        string source = FixturePaths.TinyCheckpoint;
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(dir, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (link)
            {
                File.CreateSymbolicLink(target, file);
                continue;
            }
            File.Copy(file, target);
            File.SetAttributes(target, FileAttributes.Normal);
        }
        return new TempCheckpoint(dir);
    }

    /// <summary>The full path of <paramref name="relative"/> inside the copy.</summary>
    public string PathOf(string relative) => Path.Combine(Dir, relative);

    /// <summary>Overwrites a file with <paramref name="text"/>.</summary>
    public void Write(string relative, string text)
    {
        Own(relative);
        File.WriteAllText(PathOf(relative), text);
    }

    /// <summary>Deletes a file or folder.</summary>
    public void Delete(string relative)
    {
        string p = PathOf(relative);
        if (Directory.Exists(p)) Directory.Delete(p, recursive: true);
        else File.Delete(p);
    }

    /// <summary>Cuts a file to <paramref name="length"/> bytes.</summary>
    public void Truncate(string relative, long length)
    {
        Own(relative);
        using var f = new FileStream(PathOf(relative), FileMode.Open, FileAccess.Write);
        f.SetLength(length);
    }

    /// <summary>
    /// Removes the last tensor (in header order) whose name starts with <paramref name="prefix"/> from a safetensors
    /// file, re-packing the data so the file stays valid (no hole); returns its name.
    /// </summary>
    public string DropTensor(string relative, string prefix)
    {
        var (header, data) = Read(relative);
        string victim = header.Select(kv => kv.Key).Last(k => k != "__metadata__" && k.StartsWith(prefix, StringComparison.Ordinal));
        header.Remove(victim);
        var packed = new MemoryStream();
        foreach (var (name, info) in header.Where(kv => kv.Key != "__metadata__").OrderBy(kv => (long)kv.Value!["data_offsets"]![0]!).ToList())
        {
            long start = (long)info!["data_offsets"]![0]!, end = (long)info["data_offsets"]![1]!;
            info["data_offsets"] = new JsonArray(packed.Length, packed.Length + end - start);
            packed.Write(data, (int)start, (int)(end - start));
        }
        Save(relative, header, packed.ToArray());
        return victim;
    }

    /// <summary>Gives the last stored 1-D tensor of even length n the shape [2, n/2] (same bytes, wrong shape); returns its name.</summary>
    public string ReshapeTensor(string relative)
    {
        var (header, data) = Read(relative);
        var victim = header.Where(kv => kv.Key != "__metadata__" && kv.Value!["shape"]!.AsArray().Count == 1 && (int)kv.Value!["shape"]![0]! % 2 == 0)
            .MaxBy(kv => (long)kv.Value!["data_offsets"]![1]!);
        int n = (int)victim.Value!["shape"]![0]!;
        victim.Value!["shape"] = new JsonArray(2, n / 2);
        Save(relative, header, data);
        return victim.Key;
    }

    /// <summary>Replaces the link at <paramref name="relative"/> (if it is one) by a writable private copy of its target.</summary>
    public void Own(string relative)
    {
        var file = new FileInfo(PathOf(relative));
        if (file.LinkTarget is not { } target) return;
        file.Delete();
        File.Copy(target, file.FullName);
        File.SetAttributes(file.FullName, FileAttributes.Normal);
    }

    /// <summary>Overwrites every element of <paramref name="tensor"/> in the safetensors file <paramref name="relativeFile"/> with NaN (F32, BF16 or F16).</summary>
    public void PoisonWithNaN(string relativeFile, string tensor)
    {
        Own(relativeFile);
        string path = Path.Combine(Dir, relativeFile);
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        var entry = header.RootElement.GetProperty(tensor);
        string dtype = entry.GetProperty("dtype").GetString()!;
        var offsets = entry.GetProperty("data_offsets");
        int begin = 8 + (int)headerLength + offsets[0].GetInt32(), end = 8 + (int)headerLength + offsets[1].GetInt32();
        for (int i = begin; i < end;)
        {
            switch (dtype)
            {
                case "F32": BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i), 0x7FC00000u); i += 4; break;
                case "BF16": BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i), 0x7FC0); i += 2; break;
                case "F16": BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i), 0x7E00); i += 2; break;
                default: throw new NotSupportedException($"{tensor} is {dtype}, not a float type.");
            }
        }
        File.WriteAllBytes(path, bytes);
    }

    private (JsonObject Header, byte[] Data) Read(string relative)
    {
        byte[] bytes = File.ReadAllBytes(PathOf(relative));
        long n = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        var header = JsonNode.Parse(bytes.AsSpan(8, (int)n))!.AsObject();
        return (header, bytes[(int)(8 + n)..]);
    }

    private void Save(string relative, JsonObject header, byte[] data)
    {
        string json = header.ToJsonString();
        json += new string(' ', (8 - Encoding.UTF8.GetByteCount(json) % 8) % 8);
        byte[] h = Encoding.UTF8.GetBytes(json);
        Own(relative);
        using var f = new FileStream(PathOf(relative), FileMode.Create, FileAccess.Write);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(len, h.Length);
        f.Write(len);
        f.Write(h);
        f.Write(data);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
