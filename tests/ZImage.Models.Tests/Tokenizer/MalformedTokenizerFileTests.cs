using System.Text;
using System.Text.Json.Nodes;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Models.Tokenization;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Tokenizer;

/// <summary>
/// A catalogue of malformed tokenizer files: every one must fail <see cref="Qwen2Tokenizer.Load"/> with a
/// <see cref="TokenizerFormatException"/> naming the file and the bad field (they used to escape as raw
/// KeyNotFoundException / InvalidOperationException / FormatException / ArgumentException).
/// </summary>
public sealed class MalformedTokenizerFileTests : IDisposable
{
    private readonly TempDirectory _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static JsonObject Model(JsonObject root) => root["model"]!.AsObject();

    private static JsonObject Added(JsonObject root, int i) => root["added_tokens"]![i]!.AsObject();

    /// <summary>Case name → (mutation of a valid document, text the message must contain).</summary>
    private static readonly Dictionary<string, (Action<JsonObject> Mutate, string Field)> Mutations = new()
    {
        ["model missing"] = (r => r.Remove("model"), "model is missing"),
        ["model is a string"] = (r => r["model"] = "BPE", "model is \"BPE\" (a JSON string), not an object"),
        ["model.type missing"] = (r => Model(r).Remove("type"), "model.type is missing"),
        ["model.type is a number"] = (r => Model(r)["type"] = 5, "model.type is 5"),
        ["model.type unsupported"] = (r => Model(r)["type"] = "WordPiece", "model.type 'WordPiece'"),
        ["model.byte_fallback is a string"] = (r => Model(r)["byte_fallback"] = "true", "model.byte_fallback"),
        ["model.vocab missing"] = (r => Model(r).Remove("vocab"), "model.vocab is missing"),
        ["model.vocab is an array"] = (r => Model(r)["vocab"] = new JsonArray(1, 2), "model.vocab is a JSON array, not an object"),
        ["vocab id is a string"] = (r => Model(r)["vocab"]!["ab"] = "256", "model.vocab['ab'] = \"256\" is not a token id"),
        ["vocab id is negative"] = (r => Model(r)["vocab"]!["ab"] = -1, "model.vocab['ab'] = -1"),
        ["vocab id is fractional"] = (r => Model(r)["vocab"]!["ab"] = 1.5, "model.vocab['ab'] = 1.5"),
        ["vocab id is beyond int"] = (r => Model(r)["vocab"]!["ab"] = 1L << 31, "model.vocab['ab'] = 2147483648"),
        ["vocab id is beyond the id limit"] = (r => Model(r)["vocab"]!["ab"] = Qwen2Tokenizer.MaxTokenId + 1, $"[0, {Qwen2Tokenizer.MaxTokenId}]"),
        ["vocab lacks a byte symbol"] = (r => Model(r)["vocab"]!.AsObject().Remove(ByteLevelEncoding.ByteToChar(0x41).ToString()), "byte 0x41"),
        ["model.merges missing"] = (r => Model(r).Remove("merges"), "model.merges is missing"),
        ["model.merges is an object"] = (r => Model(r)["merges"] = new JsonObject(), "model.merges is a JSON object, not an array"),
        ["merge is a number"] = (r => Model(r)["merges"]![0] = 7, "model.merges[0] = 7"),
        ["merge has one part"] = (r => Model(r)["merges"]![1] = new JsonArray("ab"), "model.merges[1]"),
        ["merge part is a number"] = (r => Model(r)["merges"]![1] = new JsonArray("ab", 3), "model.merges[1]"),
        ["merge string has three parts"] = (r => Model(r)["merges"]![0] = "a b c", "model.merges[0]"),
        ["merge string has an empty part"] = (r => Model(r)["merges"]![0] = "a ", "model.merges[0]"),
        ["merge uses an unknown token"] = (r => Model(r)["merges"]![1] = new JsonArray("ab", "zz"), "model.merges[1] ('ab', 'zz')"),
        ["added_tokens is an object"] = (r => r["added_tokens"] = new JsonObject(), "added_tokens is a JSON object, not an array"),
        ["added token is a string"] = (r => r["added_tokens"]![0] = "<|endoftext|>", "added_tokens[0] is"),
        ["added token id missing"] = (r => Added(r, 1).Remove("id"), "added_tokens[1].id is missing"),
        ["added token id is a string"] = (r => Added(r, 1)["id"] = "259", "added_tokens[1].id = \"259\""),
        ["added token id is null"] = (r => Added(r, 1)["id"] = null, "added_tokens[1].id = null"),
        ["added token content missing"] = (r => Added(r, 2).Remove("content"), "added_tokens[2].content is missing"),
        ["added token content is a number"] = (r => Added(r, 2)["content"] = 4, "added_tokens[2].content is 4"),
        ["added token content is empty"] = (r => Added(r, 2)["content"] = "", "added_tokens[2].content is empty"),
        ["added token id is used twice"] = (r => Added(r, 2)["id"] = 258, "added_tokens[2].id = 258"),
        ["added token flag is a string"] = (r => Added(r, 0)["special"] = "yes", "added_tokens[0].special"),
        ["im_end token missing"] = (r => r["added_tokens"]!.AsArray().RemoveAt(2), "'<|im_end|>'"),
        ["normalizer is a string"] = (r => r["normalizer"] = "NFC", "normalizer is \"NFC\""),
        ["normalizer.type missing"] = (r => r["normalizer"] = new JsonObject(), "normalizer.type is missing"),
        ["normalizer unsupported"] = (r => r["normalizer"] = new JsonObject { ["type"] = "NFKC" }, "normalizer {\"type\":\"NFKC\"}"),
        ["pre_tokenizer.type missing"] = (r => r["pre_tokenizer"]!.AsObject().Remove("type"), "pre_tokenizer.type is missing"),
        ["pretokenizers is a string"] = (r => r["pre_tokenizer"]!["pretokenizers"] = "Split", "pre_tokenizer.pretokenizers is"),
        ["pretokenizer step is a number"] = (r => r["pre_tokenizer"]!["pretokenizers"]![0] = 1, "pre_tokenizer is not the Qwen2"),
        ["split pattern is a string"] = (r => r["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"] = "x", "pre_tokenizer is not the Qwen2"),
        ["split regex is a number"] = (r => r["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!["Regex"] = 1, "pre_tokenizer is not the Qwen2"),
    };

    /// <summary>Case name → raw file bytes (documents that are not a mutation of the valid object).</summary>
    private static readonly Dictionary<string, (byte[] Bytes, string Field)> RawFiles = new()
    {
        ["empty file"] = ([], "not valid JSON"),
        ["truncated JSON"] = ("{\"model\":{\"type\":"u8.ToArray(), "not valid JSON"),
        ["plain text"] = ("hello tokenizer"u8.ToArray(), "not valid JSON"),
        ["not UTF-8"] = ([(byte)'{', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)':', (byte)'1', (byte)'}'], "not valid UTF-8"),
        ["root is an array"] = ("[]"u8.ToArray(), "the root is a JSON array, not an object"),
        ["root is null"] = ("null"u8.ToArray(), "the root is null, not an object"),
        ["escaped lone surrogate"] = (Encoding.UTF8.GetBytes(MinimalTokenizerJson.Create().ToJsonString().Replace("\"ab\":", "\"a\\ud800b\":", StringComparison.Ordinal)),
            "lone UTF-16 surrogate"),
    };

    public static TheoryData<string> MutationCases() => [.. Mutations.Keys];

    public static TheoryData<string> RawCases() => [.. RawFiles.Keys];

    [Fact]
    public void TheMinimalDocumentLoadsAndEncodes()
    {
        MinimalTokenizerJson.Write(_tmp.Path, MinimalTokenizerJson.Create());
        var tok = Qwen2Tokenizer.Load(_tmp.Path);
        Assert.Equal([257], tok.Encode("abc"));
        Assert.Equal(259, tok.ImStartId);
        Assert.Equal("abc", tok.Decode(tok.Encode("abc")));
    }

    [Theory]
    [MemberData(nameof(MutationCases))]
    public void AMalformedFieldIsATokenizerFormatErrorNamingTheFileAndTheField(string name)
    {
        JsonObject doc = MinimalTokenizerJson.Create();
        Mutations[name].Mutate(doc);
        string path = MinimalTokenizerJson.Write(_tmp.Path, doc);
        AssertFails(path, Mutations[name].Field);
    }

    [Theory]
    [MemberData(nameof(RawCases))]
    public void AFileThatIsNotATokenizerDocumentIsATokenizerFormatError(string name)
    {
        string path = _tmp.File("tokenizer.json");
        File.WriteAllBytes(path, RawFiles[name].Bytes);
        AssertFails(path, RawFiles[name].Field);
    }

    [Theory]
    [InlineData("[1,2]", "the root is a JSON array")]
    [InlineData("{\"chat_template\":", "not valid JSON")]
    [InlineData("{\"chat_template\":\"\\udc00\"}", "lone UTF-16 surrogate")]
    public void AMalformedTokenizerConfigIsATokenizerFormatErrorNamingThatFile(string config, string field)
    {
        MinimalTokenizerJson.Write(_tmp.Path, MinimalTokenizerJson.Create());
        string path = _tmp.File("tokenizer_config.json");
        File.WriteAllText(path, config);
        AssertFails(path, field);
    }

    private void AssertFails(string path, string field)
    {
        // Exactly this type: a KeyNotFound/InvalidOperation/Format/Argument exception fails the test.
        var ex = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.Load(_tmp.Path));
        Assert.Equal(Path.GetFullPath(path), ex.FilePath);
        Assert.Contains(Path.GetFullPath(path), ex.Message);
        Assert.Contains(field, ex.Problem);
    }
}
