using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace ZImage.Runtime.Models.Safetensors;

/// <summary>One tensor to write: name, dtype, shape and its raw little-endian payload.</summary>
/// <param name="Name">Tensor key.</param>
/// <param name="DType">Element type of <paramref name="Data"/>.</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Data">Raw payload; its length must equal element count × element size.</param>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, int[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>A float32 tensor.</summary>
    public static SafetensorsEntry FromSingles(string name, int[] shape, ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return new SafetensorsEntry(name, SafetensorsDType.F32, shape, bytes);
    }
}

/// <summary>
/// Writes standard safetensors files (header padded with spaces to a multiple of 8; tensors laid out by element size,
/// largest first, then name, so every payload is aligned to its element size), e.g. to dump activations for debugging.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> (overwriting it).</summary>
    /// <exception cref="ArgumentException">A payload length does not match its shape, or a name repeats.</exception>
    public static void Write(string path, IEnumerable<SafetensorsEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        SafetensorsEntry[] ordered = tensors.OrderByDescending(t => t.DType.ElementSize()).ThenBy(t => t.Name, StringComparer.Ordinal).ToArray();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var json = new MemoryStream();
        long offset = 0;
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach ((string k, string v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (SafetensorsEntry t in ordered)
            {
                if (!seen.Add(t.Name)) throw new ArgumentException($"Tensor '{t.Name}' appears twice.", nameof(tensors));
                long count = 1;
                foreach (int d in t.Shape) count *= d;
                if (count * t.DType.ElementSize() != t.Data.Length)
                    throw new ArgumentException($"Tensor '{t.Name}' {SafetensorsTensorInfo.FormatShape(t.Shape)} {t.DType} needs {count * t.DType.ElementSize()} bytes but has {t.Data.Length}.", nameof(tensors));
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.ToString());
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.Data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Data.Length;
            }
            w.WriteEndObject();
        }
        int padded = (int)((json.Length + 7) / 8 * 8);
        byte[] header = new byte[padded];
        json.GetBuffer().AsSpan(0, (int)json.Length).CopyTo(header);
        header.AsSpan((int)json.Length).Fill((byte)' ');

        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        file.Write(prefix);
        file.Write(header);
        foreach (SafetensorsEntry t in ordered) file.Write(t.Data.Span);
    }

    /// <summary>UTF-8 encodes <paramref name="headerJson"/> with the length prefix (for hand-made test files).</summary>
    public static byte[] EncodeHeader(string headerJson)
    {
        ArgumentNullException.ThrowIfNull(headerJson);
        byte[] body = Encoding.UTF8.GetBytes(headerJson);
        var result = new byte[8 + body.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)body.Length);
        body.CopyTo(result, 8);
        return result;
    }
}
