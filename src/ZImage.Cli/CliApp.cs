using System.CommandLine;

namespace ZImage.Cli;

/// <summary>Builds the root command from the subcommands in <c>Commands/</c>.</summary>
internal static class CliApp
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("zimage: Z-Image-Turbo on one GPU that never runs out of memory.");
        foreach (var command in Commands())
            root.Subcommands.Add(command);
        return root.Parse(args).Invoke();
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
    }
}
