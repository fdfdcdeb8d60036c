using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>Rewrites a safetensors file through a transformation of its entries (for tampered-checkpoint tests).</summary>
public static class SafetensorsEditing
{
    /// <summary>Reads every tensor of <paramref name="path"/>, applies <paramref name="edit"/> and writes the result back.</summary>
    public static void Rewrite(string path, Func<List<SafetensorsEntry>, IEnumerable<SafetensorsEntry>> edit)
    {
        List<SafetensorsEntry> entries;
        Dictionary<string, string> metadata;
        using (SafetensorsFile f = SafetensorsFile.Open(path))
        {
            entries = f.TensorNames.Select(n => new SafetensorsEntry(n, f.GetInfo(n).DType, f.GetInfo(n).Shape, f.GetBytes(n).ToArray())).ToList();
            metadata = f.Metadata.ToDictionary();
        }
        SafetensorsWriter.Write(path, edit(entries).ToList(), metadata);
    }
}
