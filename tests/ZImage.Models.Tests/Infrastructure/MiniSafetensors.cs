using System.Text.Json;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>Temporary minimal safetensors reader for tests (until the shared reader lands).</summary>
internal static class MiniSafetensors
{
    public static Dictionary<string, (string DType, int[] Shape, float[] Data)> Read(params string[] files)
    {
        var result = new Dictionary<string, (string, int[], float[])>();
        foreach (var file in files)
        {
            byte[] all = File.ReadAllBytes(file);
            long n = BitConverter.ToInt64(all, 0);
            using var doc = JsonDocument.Parse(all.AsMemory(8, (int)n));
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") continue;
                string dt = p.Value.GetProperty("dtype").GetString()!;
                int[] shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var offs = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                int start = (int)(8 + n + offs[0]);
                int len = (int)(offs[1] - offs[0]);
                float[] data = dt switch
                {
                    "F32" => Enumerable.Range(0, len / 4).Select(i => BitConverter.ToSingle(all, start + i * 4)).ToArray(),
                    "BF16" => Enumerable.Range(0, len / 2).Select(i => BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(all, start + i * 2) << 16)).ToArray(),
                    "I32" => Enumerable.Range(0, len / 4).Select(i => (float)BitConverter.ToInt32(all, start + i * 4)).ToArray(),
                    "I64" => Enumerable.Range(0, len / 8).Select(i => (float)BitConverter.ToInt64(all, start + i * 8)).ToArray(),
                    _ => [],
                };
                result[p.Name] = (dt, shape, data);
            }
        }
        return result;
    }
}
