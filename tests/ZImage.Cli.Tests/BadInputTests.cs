using System.Text.Json;
using ZImage.Tests.Infrastructure;

namespace ZImage.Cli.Tests;

/// <summary>
/// A catalogue of bad inputs: each gives exit code 2, one stderr line that names the bad value (no stack trace), and
/// with <c>--json</c> one <c>{"error": {"type", "message", "parameter"}}</c> object on stdout.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class BadInputTests : IDisposable
{
    private static readonly string Scratch = Path.Combine(Path.GetTempPath(), "zimage-cli-tests-" + Environment.ProcessId);

    public BadInputTests()
    {
        Directory.CreateDirectory(Scratch);
        File.WriteAllBytes(Path.Combine(Scratch, "empty.safetensors"), []);
        File.WriteAllText(Path.Combine(Scratch, "text.safetensors"), "this is not a safetensors file at all");
        File.WriteAllText(Path.Combine(Scratch, "a-file"), "x");
    }

    public void Dispose() { }

    private static string S(string name) => Path.Combine(Scratch, name);

    /// <summary>args, the option the error must name (null: none), a text the message must contain.</summary>
    public static TheoryData<string[], string?, string> Catalogue() => new()
    {
        { ["generate", "--prompt", "x", "--bogus"], null, "'--bogus'" },
        { ["frobnicate"], null, "'frobnicate'" },
        { ["generate"], "--prompt", "--prompt" },
        { ["generate", "--prompt", "x", "--width", "abc"], "--width", "'abc'" },
        { ["generate", "--prompt", "x", "--mode", "fast"], "--mode", "turbo, standard, quality" },
        { ["generate", "--prompt", "x", "--device", "tpu"], "--device", "'tpu'" },
        { ["generate", "--prompt", "x", "--out", S("")], "--out", "is a directory" },
        { ["generate", "--prompt", "x", "--out", Path.Combine(S("a-file"), "x.png")], "--out", "cannot be written" },
        { ["generate", "--prompt", "x", "--latents", S("")], "--latents", "is a directory" },
        { ["generate", "--prompt", "x", "--latents", S("empty.safetensors")], "--latents", "is empty" },
        { ["generate", "--prompt", "x", "--latents", S("text.safetensors")], "--latents", "not a usable safetensors file" },
        { ["generate", "--prompt", "x", "--latents", S("missing.safetensors")], "--latents", "does not exist" },
        { ["generate", "--prompt", "x", "--model", S("no-such-model")], "--model", "does not exist" },
        { ["generate", "--prompt", "x", "--model", S("a-file")], "--model", "is a file" },
        { ["generate", "--prompt", "x", "--device-bytes", "99999999999TiB", "--out", S("o.png")], "--device-bytes", "99999999999TiB" },
        { ["plan", "--device-bytes", "99999999999TiB"], "--device-bytes", "99999999999TiB" },
        { ["plan", "--device-bytes", "lots"], "--device-bytes", "'lots'" },
        { ["plan", "--device-bytes", "24GiB", "--inference", "12XB"], "--inference", "'12XB'" },
        { ["plan", "--device-bytes", "24GiB", "--allocator", "max_split_size_mb:-5"], "--allocator", "max_split_size_mb" },
        { ["plan", "--device-bytes", "24GiB", "--width", "1000"], "--width", "1000" },
        { ["plan", "--device-bytes", "24GiB", "--steps", "many"], "--steps", "'many'" },
        { ["plan", "--device-bytes", "24GiB", "--steps", "1000"], "--steps", "1000" },
        { ["plan", "--device-bytes", "24GiB", "--on-out-of-range", "maybe"], "--on-out-of-range", "'maybe'" },
        { ["plan", "--device-bytes", "24GiB", "--model", S("no-such-model")], "--model", "no-such-model" },
        { ["replay", "--trace", S("missing.jsonl")], "--trace", "missing.jsonl" },
        { ["replay", "--trace", S("a-file")], "--trace", "a-file" },
        { ["replay", "--trace", Path.Combine(FixturePaths.AllocatorFixtures, "mini.jsonl"), "--allocator", "bogus_key:1"], "--allocator", "bogus_key" },
        { ["replay", "--trace", Path.Combine(FixturePaths.AllocatorFixtures, "mini.jsonl"), "--device-bytes", "99999999999TiB"], "--device-bytes", "99999999999TiB" },
        { ["replay", "--trace", Path.Combine(FixturePaths.AllocatorFixtures, "mini.jsonl"), "--alloc-conf", "x"], null, "'--alloc-conf'" },
        { ["info", "--device", "-1"], "--device", "-1" },
        { ["check-model", S("no-such-model")], "DIR", "no-such-model" },
    };

    [Theory]
    [MemberData(nameof(Catalogue))]
    public async Task BadInput_ExitsWith2AndOneLineNamingTheValue(string[] args, string? parameter, string mentions)
    {
        var run = await CliRunner.RunAsync(args);

        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("zimage", line, StringComparison.Ordinal);
        Assert.Contains(mentions, line, StringComparison.Ordinal);
        if (parameter is not null) Assert.Contains(parameter, line, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    [Theory]
    [MemberData(nameof(Catalogue))]
    public async Task BadInput_WithJson_WritesOneErrorObject(string[] args, string? parameter, string mentions)
    {
        var run = await CliRunner.RunAsync([.. args, "--json"]);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stderr);
        var error = run.Json().GetProperty("error");
        Assert.Equal(3, error.EnumerateObject().Count());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("type").GetString()));
        Assert.Contains(mentions, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        var p = error.GetProperty("parameter");
        if (parameter is null) Assert.Equal(JsonValueKind.Null, p.ValueKind);
        else Assert.Equal(parameter, p.GetString());
        AssertNoStackTrace(run);
    }

    [Fact]
    public async Task Help_ListsTheExitCodes()
    {
        var run = await CliRunner.RunAsync("--help");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("2 bad input", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("130 cancelled", run.Stdout, StringComparison.Ordinal);
    }

    internal static void AssertNoStackTrace(CliRun run)
    {
        Assert.DoesNotContain("   at ", run.Stdout + run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception:", run.Stdout + run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled", run.Stdout + run.Stderr, StringComparison.Ordinal);
    }
}

/// <summary>The CLI swaps the process-wide console while it runs, so its tests run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliCollection
{
    public const string Name = "cli";
}
