namespace ZImage.Cli.Tests;

/// <summary>A real generation on the in-memory demo model (16x16, one step) and Ctrl+C cancellation of one.</summary>
[Collection(CliCollection.Name)]
public sealed class GenerateTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "zimage-cli-gen-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Generate_DemoModel_WritesAPngAndShowsTheCarveUpWithUnitsAndTheDemoNoticeOnce()
    {
        string png = Path.Combine(_dir, "nested", "a.png");

        var run = await CliRunner.RunAsync("generate", "--prompt", "a lighthouse", "--width", "16", "--height", "16", "--steps", "1", "--seed", "7",
            "--device", "cpu", "--out", png);

        Assert.True(run.ExitCode == 0, run.Stderr);
        byte[] bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        Assert.Contains("wrote", run.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"base \(weights\)\s+[0-9.]+ (B|KiB|MiB|GiB)", run.Stdout);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(run.Stdout, "random-weight"));
        Assert.Equal("", run.Stderr);
    }

    [Fact]
    public async Task Generate_CancelledWhileRunning_Exits130WithOneLineAndWritesNothing()
    {
        string png = Path.Combine(_dir, "cancelled.png");
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var run = await CliRunner.RunAsync(["generate", "--prompt", "x", "--width", "16", "--height", "16", "--steps", "1", "--device", "cpu", "--out", png],
            cts.Token);

        Assert.Equal(130, run.ExitCode);
        Assert.Contains("cancelled", Assert.Single(run.ErrorLines), StringComparison.Ordinal);
        Assert.False(File.Exists(png));
        BadInputTests.AssertNoStackTrace(run);
    }

    [Fact]
    public async Task Generate_CancelledWithJson_WritesACancelledErrorObject()
    {
        string png = Path.Combine(_dir, "cancelled.png");
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        var run = await CliRunner.RunAsync(["generate", "--prompt", "x", "--width", "16", "--height", "16", "--steps", "1", "--device", "cpu", "--out", png, "--json"],
            cts.Token);

        Assert.Equal(130, run.ExitCode);
        Assert.Equal("cancelled", run.Json().GetProperty("error").GetProperty("type").GetString());
        Assert.False(File.Exists(png));
    }
}
