using System.CommandLine;
using System.Runtime.InteropServices;

namespace ZImage.Cli;

/// <summary>Builds the root command from the subcommands in <c>Commands/</c>.</summary>
internal static class CliApp
{
    public static int Run(string[] args)
    {
        // Ctrl+C (and SIGTERM) cancel the running request through the command's token; a second Ctrl+C ends the process.
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = !cts.IsCancellationRequested;
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        try
        {
            return RunAsync(args, null, null, cts.Token).GetAwaiter().GetResult();
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>
    /// Runs the CLI with <paramref name="args"/>. With writers given (tests), stdout and stderr of the commands go to
    /// them for the duration of the call (runs are serialised, since the console is process-wide).
    /// </summary>
    public static Task<int> RunAsync(string[] args, TextWriter? stdout, TextWriter? stderr, CancellationToken cancellationToken) =>
        CliConsole.RunAsync(stdout, stderr, (o, e) => InvokeAsync(args, o, e, cancellationToken));

    private static async Task<int> InvokeAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        var root = new RootCommand("zimage: Z-Image-Turbo on one GPU that never runs out of memory.\n" + ExitCodes.Help);
        foreach (var command in Commands())
            root.Subcommands.Add(command);
        ParseResult parse = root.Parse(args);
        string name = "zimage" + (parse.CommandResult.Command is RootCommand ? "" : " " + parse.CommandResult.Command.Name);
        bool json = args.Contains("--json", StringComparer.Ordinal);
        if (CliParseErrors.From(parse) is { } usage)
        {
            usage.Write(name, json, stdout, stderr);
            return usage.ExitCode;
        }
        try
        {
            var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
            return await parse.InvokeAsync(config, cancellationToken);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var error = CliError.From(e, cancellationToken.IsCancellationRequested);
            error.Write(name, json, stdout, stderr);
            if (Environment.GetEnvironmentVariable("ZIMAGE_STACKTRACE") == "1") stderr.WriteLine(e);
            return error.ExitCode;
        }
    }

    // Each subcommand lives in its own file under Commands/ and is listed here.
    private static IEnumerable<Command> Commands()
    {
        yield return ZImage.Cli.Commands.ReplayCommand.Create();
        yield return ZImage.Cli.Commands.InfoCommand.Create();
        yield return ZImage.Cli.Commands.GenerateCommand.Create();
        yield return ZImage.Cli.Commands.PlanCommand.Create();
        yield return ZImage.Cli.Commands.KernelsCommand.Create();
        yield return ZImage.Cli.Commands.DoctorCommand.Create();
        yield return ZImage.Cli.Commands.CheckModelCommand.Create();
    }
}
