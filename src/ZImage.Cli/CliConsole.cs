using Spectre.Console;

namespace ZImage.Cli;

/// <summary>Points <see cref="Console"/> and Spectre's <see cref="AnsiConsole"/> at given writers for one CLI run.</summary>
internal static class CliConsole
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static async Task<int> RunAsync(TextWriter? stdout, TextWriter? stderr, Func<TextWriter, TextWriter, Task<int>> run)
    {
        if (stdout is null && stderr is null) return await run(Console.Out, Console.Error);
        await Gate.WaitAsync();
        TextWriter oldOut = Console.Out, oldErr = Console.Error;
        IAnsiConsole oldAnsi = AnsiConsole.Console;
        try
        {
            stdout ??= oldOut;
            stderr ??= oldErr;
            Console.SetOut(stdout);
            Console.SetError(stderr);
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            });
            return await run(stdout, stderr);
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
            AnsiConsole.Console = oldAnsi;
            Gate.Release();
        }
    }
}
