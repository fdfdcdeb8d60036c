using System.Buffers.Binary;
using System.Text.Json;

namespace ZImage.Tests.Infrastructure;

/// <summary>A writable copy of the tiny checkpoint in a temporary folder (deleted on dispose), for tests that corrupt it.</summary>
public sealed class TempCheckpoint : IDisposable
{
    private TempCheckpoint(string dir) => Dir = dir;

    /// <summary>The copy's folder.</summary>
    public string Dir { get; }

    /// <summary>Copies <see cref="FixturePaths.TinyCheckpoint"/>.</summary>
    public static TempCheckpoint CopyOfTiny()
    {
        string dir = Path.Combine(Path.GetTempPath(), "zimage-ckpt-" + Guid.NewGuid().ToString("N"));
        string source = FixturePaths.TinyCheckpoint;
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(dir, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
            File.SetAttributes(target, FileAttributes.Normal);
        }
        return new TempCheckpoint(dir);
    }

    /// <summary>Overwrites every element of <paramref name="tensor"/> in the safetensors file <paramref name="relativeFile"/> with NaN (F32, BF16 or F16).</summary>
    public void PoisonWithNaN(string relativeFile, string tensor)
    {
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

    /// <inheritdoc />
    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
