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

    /// <summary>
    /// Copies the checkpoint component folder <paramref name="sourceDir"/> into <paramref name="targetDir"/> with every
    /// stored float weight multiplied by 1 ± <paramref name="relative"/> (seeded random sign): the deliberate weight
    /// error that reduced-precision bounds must catch.
    /// </summary>
    public static void PerturbedCopy(string sourceDir, string targetDir, int seed = 1, float relative = 0.01f)
    {
        foreach (var file in Directory.GetFiles(sourceDir)) File.Copy(file, Path.Combine(targetDir, Path.GetFileName(file)));
        var rng = new Random(seed);
        foreach (var shard in Directory.GetFiles(targetDir, "*.safetensors"))
            Rewrite(shard, entries => entries.Select(e => Perturb(e, rng, relative)));
    }

    private static SafetensorsEntry Perturb(SafetensorsEntry e, Random rng, float relative)
    {
        var bytes = e.Data.ToArray();
        float up = 1 + relative, down = 1 - relative;
        switch (e.DType)
        {
            case SafetensorsDType.F32:
                for (int i = 0; i < bytes.Length; i += 4)
                {
                    float v = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i));
                    System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i), v * (rng.Next(2) == 0 ? up : down));
                }
                break;
            case SafetensorsDType.BF16:
                for (int i = 0; i < bytes.Length; i += 2)
                {
                    uint bits = (uint)System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i)) << 16;
                    float v = BitConverter.UInt32BitsToSingle(bits) * (rng.Next(2) == 0 ? up : down);
                    uint f = BitConverter.SingleToUInt32Bits(v);
                    uint rounded = (f + 0x7FFF + ((f >> 16) & 1)) >> 16; // round to nearest even
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i), (ushort)rounded);
                }
                break;
        }
        return e with { Data = bytes };
    }
}
