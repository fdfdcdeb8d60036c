using System.Text.Json;
using ZImage.Tests.Infrastructure;

namespace ZImage.Cli.Tests;

/// <summary><c>zimage check-model</c> on the tiny fixture and on copies of it corrupted in different ways.</summary>
[Collection(CliCollection.Name)]
public sealed class CheckModelTests
{
    private const string Vae = "vae/diffusion_pytorch_model.safetensors";
    private const string TextEncoder = "text_encoder/model.safetensors";
    private const string Shard1 = "transformer/diffusion_pytorch_model-00001-of-00002.safetensors";
    private const string Index = "transformer/diffusion_pytorch_model.safetensors.index.json";

    [Fact]
    public async Task CheckModel_TinyFixture_IsValidWithThreeComponents()
    {
        var run = await CliRunner.RunAsync("check-model", FixturePaths.TinyCheckpoint, "--json");

        Assert.Equal(0, run.ExitCode);
        var json = run.Json();
        Assert.True(json.GetProperty("valid").GetBoolean());
        Assert.Empty(json.GetProperty("problems").EnumerateArray());
        var components = json.GetProperty("components").EnumerateArray().ToList();
        Assert.Equal(["transformer", "text_encoder", "vae"], components.Select(c => c.GetProperty("name").GetString()));
        Assert.All(components, c => Assert.True(c.GetProperty("tensors").GetInt32() > 0 && c.GetProperty("bytes").GetInt64() > 0));
    }

    public static TheoryData<string, string, string> Corruptions() => new()
    {
        { "no-model-index", "config", "model_index.json" },
        { "bad-transformer-config", "config", "config.json" },
        { "out-of-range-config", "config", "config.json" },
        { "no-vae-folder", "config", "vae" },
        { "truncated-shard", "file_layout", "00001-of-00002" },
        { "garbage-header", "file_layout", "model.safetensors" },
        { "bad-index-json", "file_layout", "index.json" },
        { "index-names-missing-shard", "file_layout", "does-not-exist.safetensors" },
        { "index-escapes-folder", "file_layout", "../" },
        { "missing-tensor", "missing_key", "vae:" },
        { "reshaped-tensor", "shape_mismatch", "text_encoder:" },
        { "bad-tokenizer", "tokenizer", "tokenizer.json" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public async Task CheckModel_CorruptCopy_Exits2AndSaysWhatIsWrong(string corruption, string kind, string mentions)
    {
        using var ckpt = TempCheckpoint.LinkedCopyOfTiny();
        string? tensor = Corrupt(ckpt, corruption);

        var run = await CliRunner.RunAsync("check-model", ckpt.Dir, "--json");

        Assert.Equal(2, run.ExitCode);
        var json = run.Json();
        Assert.False(json.GetProperty("valid").GetBoolean());
        var problem = json.GetProperty("problems").EnumerateArray().First(p => p.GetProperty("kind").GetString() == kind);
        string message = problem.GetProperty("message").GetString()!;
        Assert.Contains(mentions, message, StringComparison.Ordinal);
        if (tensor is not null) Assert.Contains(tensor, message, StringComparison.Ordinal);
        BadInputTests.AssertNoStackTrace(run);
    }

    // generate runs the same check before loading (GeneratePreflight.CheckModel): one case per problem kind is enough here.
    public static TheoryData<string, string> GenerateCorruptions() => new()
    {
        { "no-model-index", "model_index.json" },
        { "truncated-shard", "00001-of-00002" },
        { "missing-tensor", "vae:" },
        { "reshaped-tensor", "text_encoder:" },
        { "bad-tokenizer", "tokenizer.json" },
    };

    [Theory]
    [MemberData(nameof(GenerateCorruptions))]
    public async Task Generate_CorruptModel_Exits2BeforeLoadingWithOneLine(string corruption, string mentions)
    {
        using var ckpt = TempCheckpoint.LinkedCopyOfTiny();
        string? tensor = Corrupt(ckpt, corruption);

        var run = await CliRunner.RunAsync("generate", "--prompt", "x", "--model", ckpt.Dir, "--width", "16", "--height", "16", "--steps", "1", "--device", "cpu", "--out", ckpt.PathOf("out.png"));

        Assert.Equal(2, run.ExitCode);
        string line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("zimage generate: --model: ", line, StringComparison.Ordinal);
        Assert.Contains(mentions, line, StringComparison.Ordinal);
        if (tensor is not null) Assert.Contains(tensor, line, StringComparison.Ordinal);
        Assert.False(File.Exists(ckpt.PathOf("out.png")));
        BadInputTests.AssertNoStackTrace(run);
    }

    [Fact]
    public async Task CheckModel_PlainText_ListsEveryProblem()
    {
        using var ckpt = TempCheckpoint.LinkedCopyOfTiny();
        string dropped = ckpt.DropTensor(Vae, "decoder.");
        string reshaped = ckpt.ReshapeTensor(TextEncoder);

        var run = await CliRunner.RunAsync("check-model", ckpt.Dir);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(dropped, run.Stdout, StringComparison.Ordinal);
        Assert.Contains(reshaped, run.Stdout, StringComparison.Ordinal);
        Assert.Contains("invalid: 2 problem(s)", run.Stdout, StringComparison.Ordinal);
    }

    private static string? Corrupt(TempCheckpoint c, string corruption)
    {
        switch (corruption)
        {
            case "no-model-index": c.Delete("model_index.json"); return null;
            case "bad-transformer-config": c.Write("transformer/config.json", "{ \"dim\": "); return null;
            case "out-of-range-config":
                var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(c.PathOf("transformer/config.json")))!.AsObject();
                node["n_heads"] = -3;
                c.Write("transformer/config.json", node.ToJsonString());
                return null;
            case "no-vae-folder": c.Delete("vae"); return null;
            case "truncated-shard": c.Truncate(Shard1, new FileInfo(c.PathOf(Shard1)).Length / 2); return null;
            case "garbage-header": c.Write(TextEncoder, "\u0010\0\0\0\0\0\0\0{not json at all"); return null;
            case "bad-index-json": c.Write(Index, "{ \"weight_map\": [1, 2"); return null;
            case "index-names-missing-shard":
                c.Write(Index, File.ReadAllText(c.PathOf(Index)).Replace("diffusion_pytorch_model-00002-of-00002.safetensors", "does-not-exist.safetensors", StringComparison.Ordinal));
                return null;
            case "index-escapes-folder":
                c.Write(Index, File.ReadAllText(c.PathOf(Index)).Replace("\"diffusion_pytorch_model-00002-of-00002.safetensors\"", "\"../vae/diffusion_pytorch_model.safetensors\"", StringComparison.Ordinal));
                return null;
            case "missing-tensor": return c.DropTensor(Vae, "decoder.");
            case "reshaped-tensor": return c.ReshapeTensor(TextEncoder);
            case "bad-tokenizer": c.Write("tokenizer/tokenizer.json", "{\"model\": 5}"); return null;
            default: throw new ArgumentOutOfRangeException(nameof(corruption), corruption, "unknown corruption");
        }
    }
}
