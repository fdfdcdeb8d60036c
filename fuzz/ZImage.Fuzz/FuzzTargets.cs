using System.Text;
using System.Text.Json;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Models.Tokenization;
using ZImage.Runtime.Pipeline;

namespace ZImage.Fuzz;

/// <summary>
/// The fuzzed readers: the safetensors header reader, the allocator trace reader, the allocator settings parser,
/// the Qwen2 tokenizer and the PNG metadata reader. Each target allows only the exception types the API documents.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static readonly string[] Names = ["safetensors", "trace", "allocator-settings", "tokenizer", "tokenizer-file", "png-metadata"];

    /// <summary>Builds the target <paramref name="name"/>; <paramref name="workDir"/> holds the safetensors and tokenizer-file targets' scratch files.</summary>
    public static FuzzTarget Create(string name, string workDir, string tokenizerDir) => name switch
    {
        "safetensors" => Safetensors(workDir),
        "trace" => Trace(),
        "allocator-settings" => Settings(),
        "tokenizer" => Tokenizer(tokenizerDir),
        "tokenizer-file" => TokenizerFile(workDir),
        "png-metadata" => Png(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, $"Unknown fuzz target; use one of: {string.Join(", ", Names)}."),
    };

    private static byte[][] Utf8(params string[] s) => s.Select(Encoding.UTF8.GetBytes).ToArray();

    /// <summary>
    /// <see cref="SafetensorsFile.Open"/> on the input written to a scratch file; an accepted file must also have
    /// every tensor's byte range inside the data section. Documented: <see cref="SafetensorsFormatException"/>.
    /// </summary>
    public static FuzzTarget Safetensors(string workDir)
    {
        Directory.CreateDirectory(workDir);
        string path = Path.Combine(workDir, $"fuzz-{Environment.ProcessId}.safetensors");
        var seeds = new List<byte[]>();
        void Seed(params SafetensorsEntry[] entries)
        {
            SafetensorsWriter.Write(path, entries, new Dictionary<string, string> { ["format"] = "pt" });
            seeds.Add(File.ReadAllBytes(path));
        }
        Seed(SafetensorsEntry.FromSingles("a", [2, 2], [1, 2, 3, 4]));
        Seed(SafetensorsEntry.FromSingles("w.weight", [3], [1, 2, 3]), new SafetensorsEntry("ids", SafetensorsDType.I64, [2], new byte[16]),
            new SafetensorsEntry("h", SafetensorsDType.BF16, [1, 3], new byte[6]), new SafetensorsEntry("u", SafetensorsDType.U8, [0], Array.Empty<byte>()));
        seeds.Add(SafetensorsWriter.EncodeHeader("{}"));
        return new FuzzTarget("safetensors", seeds, input =>
        {
            File.WriteAllBytes(path, input);
            using var file = SafetensorsFile.Open(path);
            foreach (var (_, info) in file.Tensors)
            {
                if (info.ByteLength < 0 || info.DataOffset < 0 || info.DataOffset > file.DataLength - info.ByteLength)
                    throw new InvalidOperationException($"accepted tensor {info.Name} at [{info.DataOffset}, +{info.ByteLength}) outside the {file.DataLength}-byte data section");
                if (info.ByteLength != info.ElementCount * info.DType.ElementSize())
                    throw new InvalidOperationException($"accepted tensor {info.Name} of {info.ByteLength} bytes for {info.ElementCount} elements");
            }
        }, [typeof(SafetensorsFormatException)],
            Utf8("\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"F32\"", "\"BF16\"", "\"I64\"", "\"U8\"", "\"F64\"", "[0,16]",
                "[18446744073709551615]", "[-1]", "9223372036854775807", "1e400", "\\u0000", "\\ud800", "{}", "[]", "null", "\"a\":", "\xC3\x28"));
    }

    /// <summary><see cref="TraceReader.Parse"/>. Documented: <see cref="TraceFormatException"/>.</summary>
    public static FuzzTarget Trace()
    {
        string[] files = Directory.GetFiles(Path.Combine(Tests.Infrastructure.FixturePaths.AllocatorFixtures), "*.jsonl");
        var seeds = files.Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        return new FuzzTarget("trace", seeds, input => TraceReader.Parse(Encoding.UTF8.GetString(input)), [typeof(TraceFormatException)],
            Utf8("{\"op\":\"alloc\",\"id\":4,\"size\":1,\"stream\":0}\n", "{\"op\":\"free\",\"id\":1}\n", "\"size\":", "\"id\":", "\"stream\":", "\"tag\":\"vae\"",
                "\"device_bytes\":", "\"version\":", "9223372036854775807", "-9223372036854775808", "1e30", "null", "true", "\n", "\r\n", "\"op\":\"x\"", "{}", "[]"));
    }

    /// <summary><see cref="AllocatorSettings.Parse"/>, and the canonical text of an accepted value parses to the same settings. Documented: <see cref="AllocatorSettingsException"/>.</summary>
    public static FuzzTarget Settings()
    {
        var seeds = Utf8("", "max_split_size_mb:128", "garbage_collection_threshold:0.6,max_split_size_mb:512",
            "roundup_power2_divisions:[256:1,512:2,1024:4,>:8]", "roundup_power2_divisions:4", "expandable_segments:True",
            "per_process_memory_fraction:0.5", "max_non_split_rounding_mb:64", "backend:native", " max_split_size_mb : 20 , expandable_segments:False ");
        return new FuzzTarget("allocator-settings", seeds, input =>
        {
            var s = AllocatorSettings.Parse(Encoding.UTF8.GetString(input));
            var again = AllocatorSettings.Parse(s.ToString());
            if (again.ToString() != s.ToString())
                throw new InvalidOperationException($"canonical text '{s}' re-parses to '{again}'");
        }, [typeof(AllocatorSettingsException)],
            Utf8("max_split_size_mb", "garbage_collection_threshold", "roundup_power2_divisions", "expandable_segments", "per_process_memory_fraction",
                "max_non_split_rounding_mb", "backend", ":", ",", "[", "]", ">", "True", "False", "native", "cudaMallocAsync", "NaN", "1e308", "-0", "0.0000001",
                "9223372036854775807", "18446744073709551616"));
    }

    /// <summary>
    /// <see cref="Qwen2Tokenizer.EncodeChat"/> of the input as text (invalid UTF-8 becomes U+FFFD), plus
    /// <see cref="Qwen2Tokenizer.Encode"/> / <see cref="Qwen2Tokenizer.Decode"/> round trip of text without special
    /// tokens. Documented: <see cref="MalformedTextException"/> (a lone surrogate).
    /// </summary>
    public static FuzzTarget Tokenizer(string tokenizerDir)
    {
        var tok = Qwen2Tokenizer.Load(tokenizerDir);
        var seeds = Utf8("a lighthouse at dusk", "A cat sitting on a windowsill", "", " ", "日本語のテキスト", "emoji 🐱🌅 and ZWJ 👨‍👩‍👧", "can't won't I'm",
            "<|im_start|>user\nhi<|im_end|>", "   leading and trailing   ", "numbers 1234567890 3.14159", "tabs\tand\nnewlines\r\n", "Ünïcödé ñ ß ﬁ", "a\u0301e\u0300");
        return new FuzzTarget("tokenizer", seeds, input =>
        {
            // Odd first byte: the rest is UTF-16LE (reaches lone surrogates, which UTF-8 decoding never yields).
            string text = input.Length > 0 && (input[0] & 1) == 1 ? Encoding.Unicode.GetString(input, 1, (input.Length - 1) & ~1) : Encoding.UTF8.GetString(input);
            var ids = tok.EncodeChat(text, 512);
            if (ids.Length is < 1 or > 512) throw new InvalidOperationException($"EncodeChat returned {ids.Length} ids");
            // (.NET's own Normalize rejects U+FFFE/U+FFFF, so the oracle skips texts holding them.)
            if (!text.Contains("<|", StringComparison.Ordinal) && !HasLoneSurrogate(text) && text.AsSpan().IndexOfAny('\uFFFE', '\uFFFF') < 0)
            {
                // The Qwen2 tokenizer normalises to NFC, so the round trip gives the NFC form back.
                string back = tok.Decode(tok.Encode(text));
                if (back != text.Normalize(NormalizationForm.FormC)) throw new InvalidOperationException("Decode(Encode(text)) differs from NFC(text)");
            }
        }, [typeof(MalformedTextException)],
            [.. Utf8("<|im_start|>", "<|im_end|>", "<|endoftext|>", "'s", "'ll", " ", "\n\n", "\u00A0", "\uFEFF", "\u200D", "🐱", "\U0001F600", "日本", "ｱ", "İ", "ǅ"),
                [0x00, 0xD8], [0x00, 0xDC], [0x3D, 0xD8, 0x31, 0xDC]]);
    }

    /// <summary>
    /// <see cref="Qwen2Tokenizer.Load"/> of the input written as a scratch <c>tokenizer.json</c> (seeded with the smallest
    /// accepted document); an accepted file must then encode and decode text. Documented: <see cref="TokenizerFormatException"/>.
    /// </summary>
    public static FuzzTarget TokenizerFile(string workDir)
    {
        string dir = Path.Combine(workDir, $"fuzz-tokenizer-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        var minimal = Tests.Infrastructure.MinimalTokenizerJson.Create();
        var seeds = new List<byte[]> { Encoding.UTF8.GetBytes(minimal.ToJsonString()) };
        minimal["model"]!["merges"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonArray("a", "b"), "ab c");
        minimal.Remove("normalizer");
        seeds.Add(Encoding.UTF8.GetBytes(minimal.ToJsonString()));
        string path = Path.Combine(dir, "tokenizer.json");
        return new FuzzTarget("tokenizer-file", seeds, input =>
        {
            File.WriteAllBytes(path, input);
            var tok = Qwen2Tokenizer.Load(dir);
            int[] ids = tok.EncodeChat("abc ab a\u00e9 \U0001F431 <|im_end|>", 64);
            if (ids.Length is < 1 or > 64) throw new InvalidOperationException($"EncodeChat returned {ids.Length} ids");
            _ = tok.Decode(ids);
        }, [typeof(TokenizerFormatException)],
            Utf8("\"model\"", "\"vocab\"", "\"merges\"", "\"added_tokens\"", "\"id\"", "\"content\"", "\"special\"", "\"lstrip\"", "\"rstrip\"",
                "\"type\"", "\"BPE\"", "\"NFC\"", "\"Sequence\"", "\"pretokenizers\"", "\"normalizer\"", "\"pre_tokenizer\"", "\"byte_fallback\"",
                "\"<|im_start|>\"", "\"<|im_end|>\"", "\"<|endoftext|>\"", "\"a b\"", "[\"a\",\"b\"]", "16777215", "16777216", "2147483648", "-1", "1.5",
                "null", "true", "{}", "[]", "\\ud800", "\\u0000", "\xC3\x28"));
    }

    private static bool HasLoneSurrogate(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            else if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }

    /// <summary>
    /// <see cref="PngMetadata.ReadText"/> and <see cref="PngMetadata.ReadParameters"/>. Documented:
    /// <see cref="InvalidDataException"/> (not a PNG, truncated chunk, CRC mismatch) and, for a parameters chunk that
    /// is not valid JSON of <see cref="GenerationParameters"/>, <see cref="JsonException"/>.
    /// </summary>
    public static FuzzTarget Png()
    {
        var p = new GenerationParameters("a lighthouse", "fog", GenerationMode.Standard, 16, 16, 8, 4f, 1f, 0f, 42, 1, false, "tiny");
        var image = new RgbImage(2, 2, new byte[12]);
        var seeds = new List<byte[]> { PngMetadata.Encode(image, PngMetadata.FromParameters(p)), PngMetadata.Encode(image, [new("Comment", "hello")]) };
        return new FuzzTarget("png-metadata", seeds, input =>
        {
            PngMetadata.ReadText(input);
            PngMetadata.ReadParameters(input);
        }, [typeof(InvalidDataException), typeof(JsonException)],
            Utf8("tEXt", "iTXt", "IEND", "IHDR", "zTXt", "parameters", "zimage", "\0", "{\"prompt\":", "\"seed\":", "null", "9223372036854775807"));
    }
}
