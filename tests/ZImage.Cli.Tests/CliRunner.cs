using System.Text.Json;
using ZImage.Cli;

namespace ZImage.Cli.Tests;

/// <summary>The outcome of one in-process CLI run.</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The non-empty stderr lines.</summary>
    public string[] ErrorLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>stdout parsed as JSON.</summary>
    public JsonElement Json() => JsonDocument.Parse(Stdout).RootElement.Clone();
}

/// <summary>Runs <c>zimage</c> in this process (the app's entry with captured stdout and stderr), not as a subprocess.</summary>
public static class CliRunner
{
    public static async Task<CliRun> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = await CliApp.RunAsync(args, stdout, stderr, cancellationToken);
        return new CliRun(code, stdout.ToString(), stderr.ToString());
    }

    public static Task<CliRun> RunAsync(params string[] args) => RunAsync(args, CancellationToken.None);
}
