using System.Text.Json.Nodes;
using ZImage.Runtime.Models.Tokenization;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// The smallest tokenizer.json <see cref="Qwen2Tokenizer.Load"/> accepts: the 256 byte-level symbols, two merges
/// ("a b" and ["ab","c"]), NFC, the Qwen2 pre-tokenizer sequence and the three special tokens. Tests mutate the node
/// to build malformed files; loading it is cheap (the real file is 5 MB).
/// </summary>
public static class MinimalTokenizerJson
{
    /// <summary>A fresh copy of the document.</summary>
    public static JsonObject Create()
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteLevelEncoding.ByteToChar((byte)b).ToString()] = b;
        vocab["ab"] = 256;
        vocab["abc"] = 257;
        return new JsonObject
        {
            ["version"] = "1.0",
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split",
                        ["pattern"] = new JsonObject { ["Regex"] = Qwen2PreTokenizer.Pattern },
                        ["behavior"] = "Isolated",
                        ["invert"] = false,
                    },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["byte_fallback"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray("a b", new JsonArray("ab", "c")),
            },
            ["added_tokens"] = new JsonArray(
                Added(258, "<|endoftext|>"),
                Added(259, "<|im_start|>"),
                Added(260, "<|im_end|>")),
        };
    }

    /// <summary>Writes <paramref name="json"/> as <c>tokenizer.json</c> in <paramref name="directory"/>.</summary>
    public static string Write(string directory, JsonNode json)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, "tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    private static JsonObject Added(int id, string content) =>
        new() { ["id"] = id, ["content"] = content, ["special"] = true, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false };
}
