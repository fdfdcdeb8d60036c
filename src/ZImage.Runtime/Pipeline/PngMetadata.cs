using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using StbImageSharp;
using StbImageWriteSharp;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// PNG encoding with generation parameters in text chunks, and the matching reader. Pixels are encoded by
/// StbImageWriteSharp; text chunks are inserted right after IHDR (tEXt, or iTXt with UTF-8 when a value has characters outside Latin-1): <c>Software</c>, <c>parameters</c>
/// (A1111-style human-readable line, which many viewers show) and <c>zimage</c> (the parameters as JSON,
/// read back by <see cref="ReadParameters"/>).
/// </summary>
public static class PngMetadata
{
    /// <summary>Key of the JSON parameters chunk.</summary>
    public const string ParametersJsonKey = "zimage";
    /// <summary>Key of the A1111-style parameters chunk.</summary>
    public const string ParametersTextKey = "parameters";

    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];
    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() }, WriteIndented = false };
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>The text chunks that describe <paramref name="p"/>.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> FromParameters(GenerationParameters p)
    {
        ArgumentNullException.ThrowIfNull(p);
        var inv = CultureInfo.InvariantCulture;
        var line = new StringBuilder(p.Prompt);
        if (p.NegativePrompt is not null) line.Append("\nNegative prompt: ").Append(p.NegativePrompt);
        line.Append(inv, $"\nSteps: {p.Steps}, Sampler: FlowMatchEuler, CFG scale: {p.Guidance.ToString("0.###", inv)}, Seed: {p.Seed}, Size: {p.Width}x{p.Height}, ")
            .Append(inv, $"Mode: {p.Mode}, CFG truncation: {p.CfgTruncation.ToString("0.###", inv)}, CFG normalization: {p.CfgNormalization.ToString("0.###", inv)}, Model: {p.Model}");
        if (p.Strength is { } strength)
            line.Append(inv, $", {(p.MaskGiven ? "Inpaint" : "Img2img")} strength: {strength.ToString("0.###", inv)}");
        if (p.Loras is { } loras) line.Append(", LoRA: ").Append(loras);
        return
        [
            new("Software", "ZImage"),
            new(ParametersTextKey, line.ToString()),
            new(ParametersJsonKey, JsonSerializer.Serialize(p with { NumImages = 1 }, Json)),
        ];
    }

    /// <summary>Encodes <paramref name="image"/> as PNG with <paramref name="text"/> as text chunks (Latin-1 keys of 1–79 chars).</summary>
    public static byte[] Encode(RgbImage image, IEnumerable<KeyValuePair<string, string>> text)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(text);
        using var raw = new MemoryStream();
        new ImageWriter().WritePng(image.Pixels, image.Width, image.Height, StbImageWriteSharp.ColorComponents.RedGreenBlue, raw);
        byte[] png = raw.ToArray();
        // The first chunk is IHDR: 8 signature + 4 length + 4 type + 13 data + 4 CRC.
        const int afterIhdr = 8 + 4 + 4 + 13 + 4;
        using var output = new MemoryStream(png.Length + 1024);
        output.Write(png, 0, afterIhdr);
        foreach (var (key, value) in text)
            WriteChunk(output, IsLatin1(value) && !value.Contains('\0') ? "tEXt" : "iTXt", TextChunkData(key, value));
        output.Write(png, afterIhdr, png.Length - afterIhdr);
        return output.ToArray();
    }

    /// <summary>Decodes a PNG to RGB8.</summary>
    public static RgbImage Decode(byte[] png)
    {
        ArgumentNullException.ThrowIfNull(png);
        var result = ImageResult.FromMemory(png, StbImageSharp.ColorComponents.RedGreenBlue);
        return new RgbImage(result.Width, result.Height, result.Data);
    }

    /// <summary>Reads all tEXt and iTXt chunks (uncompressed) of a PNG, verifying each chunk's CRC.</summary>
    /// <exception cref="InvalidDataException">Not a PNG, a truncated chunk or a CRC mismatch.</exception>
    public static IReadOnlyDictionary<string, string> ReadText(byte[] png)
    {
        ArgumentNullException.ThrowIfNull(png);
        if (png.Length < 8 || !png.AsSpan(0, 8).SequenceEqual(Signature))
            throw new InvalidDataException("Not a PNG file (bad signature).");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            uint claimed = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (pos + 12 + (long)claimed > png.Length)
                throw new InvalidDataException($"PNG chunk at offset {pos} claims {claimed} bytes but the file ends at {png.Length}.");
            int len = (int)claimed;
            string type = Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + len));
            uint actual = Crc(png.AsSpan(pos + 4, 4 + len));
            if (crc != actual)
                throw new InvalidDataException($"PNG chunk {type} at offset {pos} has CRC {crc:X8}, expected {actual:X8}.");
            if (type == "tEXt")
            {
                int z = data.IndexOf((byte)0);
                if (z > 0) result[Encoding.Latin1.GetString(data[..z])] = Encoding.Latin1.GetString(data[(z + 1)..]);
            }
            else if (type == "iTXt")
            {
                int z = data.IndexOf((byte)0);
                // keyword \0 compression-flag compression-method language \0 translated-keyword \0 text
                if (z > 0 && z + 2 < data.Length && data[z + 1] == 0)
                {
                    var rest = data[(z + 3)..];
                    int l1 = rest.IndexOf((byte)0);
                    if (l1 >= 0)
                    {
                        var rest2 = rest[(l1 + 1)..];
                        int l2 = rest2.IndexOf((byte)0);
                        if (l2 >= 0) result[Encoding.Latin1.GetString(data[..z])] = Encoding.UTF8.GetString(rest2[(l2 + 1)..]);
                    }
                }
            }
            if (type == "IEND") break;
            pos += 12 + len;
        }
        return result;
    }

    /// <summary>Reads the generation parameters a ZImage PNG carries, or null when it has none.</summary>
    public static GenerationParameters? ReadParameters(byte[] png)
    {
        var text = ReadText(png);
        return text.TryGetValue(ParametersJsonKey, out var json) ? JsonSerializer.Deserialize<GenerationParameters>(json, Json) : null;
    }

    private static byte[] TextChunkData(string key, string value)
    {
        if (key.Length is < 1 or > 79 || !IsLatin1(key) || key.Contains('\0'))
            throw new ArgumentException($"PNG text keyword '{key}' must be 1..79 Latin-1 characters without NUL.", nameof(key));
        var ms = new MemoryStream();
        ms.Write(Encoding.Latin1.GetBytes(key));
        ms.WriteByte(0);
        if (IsLatin1(value) && !value.Contains('\0'))
        {
            ms.Write(Encoding.Latin1.GetBytes(value));
        }
        else
        {
            ms.WriteByte(0); // uncompressed
            ms.WriteByte(0); // compression method
            ms.WriteByte(0); // empty language tag
            ms.WriteByte(0); // empty translated keyword
            ms.Write(Encoding.UTF8.GetBytes(value));
        }
        return ms.ToArray();
    }

    private static void WriteChunk(Stream s, string type, byte[] data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(head, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, head[4..]);
        s.Write(head);
        s.Write(data);
        uint crc = Crc(head[4..], data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        s.Write(tail);
    }

    private static bool IsLatin1(string s)
    {
        foreach (char c in s) if (c > 0xFF) return false;
        return true;
    }

    // CRC-32 (ISO 3309 / PNG spec annex D) over the chunk type and data.
    private static uint Crc(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b = default)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte x in a) c = CrcTable[(c ^ x) & 0xFF] ^ (c >> 8);
        foreach (byte x in b) c = CrcTable[(c ^ x) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    private static uint[] BuildCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
