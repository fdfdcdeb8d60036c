using System.Text.Json;
using System.Text.Json.Nodes;
using ZImage.Tests.Infrastructure;

namespace ZImage.Cli.Tests;

/// <summary>
/// A <c>--model</c> folder whose tokenizer.json is malformed: one clear line naming the file and the bad field, exit
/// code 2, and the JSON error object with <c>--json</c> (Qwen2Tokenizer.Load used to throw raw KeyNotFound /
/// InvalidOperation exceptions for these).
/// </summary>
[Collection(CliCollection.Name)]
public sealed class TokenizerFileTests
{
    private const string TokenizerFile = "tokenizer/tokenizer.json";

    public static TheoryData<string, string> BadTokenizers() => new()
    {
        { "not-json", "not valid JSON" },
        { "vocab-is-an-array", "model.vocab is a JSON array, not an object" },
        { "merges-missing", "model.merges is missing" },
        { "merge-not-a-pair", "model.merges[0] = 7" },
        { "added-token-id-is-text", "added_tokens[0].id = \"x\"" },
        { "escaped-lone-surrogate", "lone UTF-16 surrogate" },
    };

    [Theory]
    [MemberData(nameof(BadTokenizers))]
    public async Task Generate_BadTokenizer_Exits2WithOneLineNamingTheField(string corruption, string field)
    {
        using var ckpt = TempCheckpoint.LinkedCopyOfTiny();
        ckpt.Write(TokenizerFile, Corrupt(corruption));

        var run = await CliRunner.RunAsync(Generate(ckpt));

        Assert.Equal(2, run.ExitCode);
        string line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("zimage generate: --model: ", line, StringComparison.Ordinal);
        Assert.Contains(ckpt.PathOf(TokenizerFile), line, StringComparison.Ordinal);
        Assert.Contains(field, line, StringComparison.Ordinal);
        Assert.False(File.Exists(ckpt.PathOf("out.png")));
        BadInputTests.AssertNoStackTrace(run);
    }

    [Theory]
    [MemberData(nameof(BadTokenizers))]
    public async Task Generate_BadTokenizerWithJson_WritesOneErrorObject(string corruption, string field)
    {
        using var ckpt = TempCheckpoint.LinkedCopyOfTiny();
        ckpt.Write(TokenizerFile, Corrupt(corruption));

        var run = await CliRunner.RunAsync([.. Generate(ckpt), "--json"]);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stderr);
        var error = run.Json().GetProperty("error");
        Assert.Equal("--model", error.GetProperty("parameter").GetString());
        Assert.Contains(field, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plan_BadTokenizer_Exits2NamingTheField()
    {
        using var ckpt = TempCheckpoint.LinkedCopyOfTiny();
        ckpt.Write(TokenizerFile, Corrupt("merges-missing"));

        var run = await CliRunner.RunAsync("plan", "--model", ckpt.Dir, "--json");

        Assert.Equal(2, run.ExitCode);
        var error = run.Json().GetProperty("error");
        Assert.Equal("tokenizer_format", error.GetProperty("type").GetString());
        Assert.Equal("--model", error.GetProperty("parameter").GetString());
        Assert.Contains("model.merges is missing", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    private static string[] Generate(TempCheckpoint ckpt) =>
        ["generate", "--prompt", "x", "--model", ckpt.Dir, "--width", "16", "--height", "16", "--steps", "1", "--device", "cpu", "--out", ckpt.PathOf("out.png")];

    private static string Corrupt(string corruption)
    {
        JsonObject doc = MinimalTokenizerJson.Create();
        JsonObject model = doc["model"]!.AsObject();
        switch (corruption)
        {
            case "not-json": return "{\"model\": {\"vocab\": ";
            case "vocab-is-an-array": model["vocab"] = new JsonArray(); break;
            case "merges-missing": model.Remove("merges"); break;
            case "merge-not-a-pair": model["merges"]![0] = 7; break;
            case "added-token-id-is-text": doc["added_tokens"]![0]!["id"] = "x"; break;
            case "escaped-lone-surrogate": return doc.ToJsonString().Replace("\"ab\":", "\"a\\udc00b\":", StringComparison.Ordinal);
            default: throw new ArgumentOutOfRangeException(nameof(corruption), corruption, "unknown corruption");
        }
        return doc.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }
}
