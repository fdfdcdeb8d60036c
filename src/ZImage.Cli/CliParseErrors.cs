using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace ZImage.Cli;

/// <summary>Turns System.CommandLine's parse errors into one <see cref="CliError"/> line (exit code 2) naming the value and what is allowed.</summary>
internal static partial class CliParseErrors
{
    public static CliError? From(ParseResult parse)
    {
        if (parse.Errors.Count == 0) return null;
        // "Unrecognized command or argument 'x'" says more than the "Required command was not provided" that comes with it.
        ParseError first = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
        Command command = parse.CommandResult.Command;
        string? parameter = first.SymbolResult switch
        {
            OptionResult o => o.Option.Name,
            ArgumentResult { Parent: OptionResult o } => o.Option.Name,
            _ => null,
        };
        // Some messages list the allowed values one per line ("Must be one of:\n\t'reject'\n\t'reset'"): keep them on one line.
        string message = Regex.Replace(Regex.Replace(first.Message, @"'\s*\n\s*'", "', '"), @"\s*\n\s*", " ").Trim();
        if (CannotParse().Match(message) is { Success: true } m)
        {
            parameter = m.Groups["option"].Value;
            Type? enumType = command.Options.FirstOrDefault(o => o.Name == parameter)?.ValueType is { } t ? Nullable.GetUnderlyingType(t) ?? t : null;
            message = enumType is { IsEnum: true }
                ? $"{parameter}: '{m.Groups["value"].Value}' is not allowed; allowed: {string.Join(", ", Enum.GetNames(enumType).Select(n => n.ToLowerInvariant()))}."
                : $"{parameter}: '{m.Groups["value"].Value}' is not {Friendly(m.Groups["type"].Value)}.";
        }
        else if (message.StartsWith("Unrecognized command or argument", StringComparison.Ordinal))
        {
            var allowed = command.Options.Where(o => !o.Hidden).Select(o => o.Name).ToList();
            allowed.AddRange(command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
            message += $" Allowed for '{(command is RootCommand ? "zimage" : "zimage " + command.Name)}': {string.Join(", ", allowed)}.";
        }
        else if (parameter is not null && !message.Contains(parameter, StringComparison.Ordinal))
        {
            message = $"{parameter}: {message}";
        }
        return new CliError(ExitCodes.BadInput, "usage", message, parameter);
    }

    private static string Friendly(string type) => type switch
    {
        _ when type.Contains("Int32", StringComparison.Ordinal) || type.Contains("Int64", StringComparison.Ordinal) => "an integer",
        _ when type.Contains("Single", StringComparison.Ordinal) || type.Contains("Double", StringComparison.Ordinal) => "a number",
        _ when type.Contains("Boolean", StringComparison.Ordinal) => "true or false",
        _ => "a valid value",
    };

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'")]
    private static partial Regex CannotParse();
}
