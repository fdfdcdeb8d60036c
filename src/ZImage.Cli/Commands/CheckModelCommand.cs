using System.CommandLine;
using Spectre.Console;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;

namespace ZImage.Cli.Commands;

/// <summary>
/// <c>zimage check-model DIR</c>: validates a checkpoint folder (configs, file layout, every key, shape and dtype,
/// tokenizer) without loading it to a device. Exit code 0 when valid, 2 when not.
/// </summary>
internal static class CheckModelCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "A diffusers-format Z-Image checkpoint folder." };
        var json = CliOptions.Json();
        var command = new Command("check-model", "Validate a checkpoint folder (configs, file layout, every tensor key, shape and dtype, tokenizer) without loading it. Exit code 0 valid, 2 invalid.")
        {
            dir, json,
        };
        command.SetAction(parse => Run(parse.GetValue(dir)!, parse.GetValue(json)));
        return command;
    }

    private static int Run(string dir, bool json)
    {
        if (!Directory.Exists(dir))
            throw new CliInputException("DIR", File.Exists(dir) ? $"DIR '{dir}' is a file; allowed: a checkpoint folder." : $"DIR '{dir}' does not exist; allowed: a checkpoint folder.");
        CheckpointCheckReport report = CheckpointCheck.Run(dir);
        if (json)
        {
            JsonOut.Write(new
            {
                directory = report.Directory,
                valid = report.IsValid,
                problems = report.Problems.Select(p => new { component = p.Component, kind = p.Kind, message = p.Message }),
                notes = report.Notes,
                components = report.Components.Select(c => new { name = c.Component, tensors = c.Tensors, bytes = c.Bytes }),
            });
        }
        else
        {
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(report.Directory)}[/]");
            foreach (var c in report.Components)
                AnsiConsole.MarkupLine($"  {Markup.Escape(c.Component)}: {c.Tensors} tensors, {ByteSize.Format(c.Bytes)}");
            foreach (string n in report.Notes) AnsiConsole.MarkupLine("  note: " + Markup.Escape(n));
            foreach (var p in report.Problems) AnsiConsole.MarkupLine($"  [red]{Markup.Escape(p.Kind)}[/]: {Markup.Escape(p.Message)}");
            AnsiConsole.MarkupLine(report.IsValid ? "[green]valid[/]" : $"[red]invalid: {report.Problems.Count} problem(s)[/]");
        }
        return report.IsValid ? ExitCodes.Ok : ExitCodes.BadInput;
    }
}
