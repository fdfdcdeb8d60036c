using System.Text.Json;
using System.Text.RegularExpressions;

namespace ZImage.Cli.Tests;

/// <summary>JSON is snake_case in every command, the memory-bar legend carries units, options have one name everywhere.</summary>
[Collection(CliCollection.Name)]
public sealed partial class OutputFormatTests
{
    [Fact]
    public async Task InfoJson_IsSnakeCase()
    {
        var run = await CliRunner.RunAsync("info", "--device", "cpu", "--json");

        Assert.Equal(0, run.ExitCode);
        var keys = run.Json().EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("device_name", keys);
        Assert.All(keys, k => Assert.Matches(SnakeCase(), k));
        Assert.Equal("cpu", run.Json().GetProperty("kind").GetString());
    }

    [Fact]
    public async Task PlanJson_IsSnakeCaseAllTheWayDown()
    {
        var run = await CliRunner.RunAsync("plan", "--device-bytes", "24GiB", "--width", "512", "--height", "512", "--json");

        Assert.Equal(0, run.ExitCode);
        AssertSnake(run.Json());
    }

    [Fact]
    public async Task Plan_MemoryBarLegendShowsUnits()
    {
        var run = await CliRunner.RunAsync("plan", "--device-bytes", "24GiB", "--width", "512", "--height", "512");

        Assert.Equal(0, run.ExitCode);
        Assert.Matches(@"base \(weights\)\s+[0-9.]+ GiB", run.Stdout);
        Assert.Matches(@"buffer\s+[0-9.]+ (MiB|GiB)", run.Stdout);
    }

    [Fact]
    public async Task Replay_TakesAllocatorLikeGenerateAndPlan()
    {
        string trace = Path.Combine(ZImage.Tests.Infrastructure.FixturePaths.AllocatorFixtures, "mini.jsonl");

        var run = await CliRunner.RunAsync("replay", "--trace", trace, "--allocator", "max_split_size_mb:128", "--json");

        Assert.Equal(0, run.ExitCode);
        AssertSnake(run.Json());
    }

    private static void AssertSnake(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Object)
            foreach (var p in e.EnumerateObject())
            {
                Assert.Matches(SnakeCase(), p.Name);
                AssertSnake(p.Value);
            }
        else if (e.ValueKind == JsonValueKind.Array)
            foreach (var x in e.EnumerateArray()) AssertSnake(x);
    }

    [GeneratedRegex("^[a-z0-9]+(_[a-z0-9]+)*$")]
    private static partial Regex SnakeCase();
}
