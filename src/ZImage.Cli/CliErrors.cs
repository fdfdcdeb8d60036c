using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Options;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Models.Tokenization;
using ZImage.Runtime.Pipeline;

namespace ZImage.Cli;

/// <summary>The exit codes of every command (also in <c>--help</c> and the README).</summary>
internal static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;
    /// <summary>A failure while running (device error, out of memory, I/O error while writing).</summary>
    public const int Failure = 1;
    /// <summary>Bad input: an unknown option, a bad value, a corrupt model folder or latents file, an unusable --out.</summary>
    public const int BadInput = 2;
    /// <summary>Cancelled with Ctrl+C (128 + SIGINT, as shells report it).</summary>
    public const int Cancelled = 130;

    /// <summary>The line <c>--help</c> shows.</summary>
    public const string Help = "Exit codes: 0 success, 1 failure while running, 2 bad input (option, value, model folder, latents, --out), 130 cancelled (Ctrl+C).";
}

/// <summary>A bad command-line value the CLI itself found: names the option (<see cref="Parameter"/>) and what is allowed.</summary>
internal sealed class CliInputException(string parameter, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The option, e.g. <c>--out</c>.</summary>
    public string Parameter { get; } = parameter;
}

/// <summary>One error as the CLI reports it: exit code, a snake_case type, a one-line message and the option it concerns.</summary>
internal sealed record CliError(int ExitCode, string Type, string Message, string? Parameter)
{
    /// <summary>Writes the error: <c>zimage CMD: message</c> on stderr, or <c>{"error": {...}}</c> on stdout with <c>--json</c>.</summary>
    public void Write(string command, bool json, TextWriter stdout, TextWriter stderr)
    {
        if (json)
            stdout.WriteLine(JsonSerializer.Serialize(new { error = new { type = Type, message = Message, parameter = Parameter } }, Commands.JsonOut.Options));
        else
            stderr.WriteLine($"{command}: {Message}");
    }

    /// <summary>
    /// The one mapping from an exception to what the user sees. Library exceptions about inputs are exit code 2 and
    /// name the option they came from; anything else that escapes a command is a failure while running (1), reported
    /// by its message only (set <c>ZIMAGE_STACKTRACE=1</c> to see the stack).
    /// </summary>
    public static CliError From(Exception e, bool cancelled)
    {
        e = Unwrap(e);
        string type = Snake(e.GetType().Name);
        return e switch
        {
            OperationCanceledException when cancelled => new(ExitCodes.Cancelled, "cancelled", "cancelled (Ctrl+C); nothing was written.", null),
            CliInputException c => new(ExitCodes.BadInput, "invalid_argument", OneLine(c.Message), c.Parameter),
            InvalidGenerationRequestException g => WithOption(ExitCodes.BadInput, type, g),
            AllocatorSettingsException => new(ExitCodes.BadInput, type, "--allocator: " + OneLine(e.Message), "--allocator"),
            TraceFormatException => new(ExitCodes.BadInput, type, "--trace: " + OneLine(e.Message), "--trace"),
            Runtime.Models.Lora.LoraFormatException => new(ExitCodes.BadInput, type, "--lora: " + OneLine(e.Message), "--lora"),
            CheckpointConfigurationException or CheckpointValidationException or SafetensorsFormatException or TokenizerFormatException
                => new(ExitCodes.BadInput, type, "--model: " + OneLine(e.Message), "--model"),
            RequestExceedsBudgetException or BudgetLayoutException or OptionsValidationException
                or Runtime.Residency.RungNotAvailableException or Runtime.Residency.InsufficientHostMemoryException
                or InvalidImageException
                => new(ExitCodes.BadInput, type, OneLine(e.Message), null),
            ArgumentException a => WithOption(ExitCodes.BadInput, type, a),
            FormatException or OverflowException => new(ExitCodes.BadInput, type, OneLine(e.Message), null),
            _ => new(ExitCodes.Failure, type, OneLine(e.Message), null),
        };
    }

    // "Width = 17 is invalid; ... (Parameter 'Width')" becomes "--width: Width = 17 is invalid; ...".
    private static CliError WithOption(int code, string type, ArgumentException a)
    {
        string message = a.Message;
        string? option = OptionName(a.ParamName);
        if (a.ParamName is { } p && message.EndsWith($" (Parameter '{p}')", StringComparison.Ordinal))
            message = message[..^$" (Parameter '{p}')".Length];
        return new(code, type, OneLine(option is null ? message : $"{option}: {message}"), option);
    }

    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
            else if (e is TargetInvocationException { InnerException: { } t }) e = t;
            else return e;
        }
    }

    // The first line only (multi-line messages such as a validation report keep their count line), so every error is one line.
    private static string OneLine(string message)
    {
        string[] lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length <= 1 ? message.Trim() : lines[0] + " " + lines[1] + (lines.Length > 2 ? $" (+{lines.Length - 2} more; run 'zimage check-model DIR')" : "");
    }

    // GenerationRequest property names (Width, InitialLatents) as the CLI spells them (--width, --latents).
    private static string? OptionName(string? param) => param switch
    {
        null or "" => null,
        "InitialLatents" => "--latents",
        "NegativePrompt" => "--negative",
        "NumImages" => "--num-images",
        _ when param.StartsWith("--", StringComparison.Ordinal) => param,
        _ => "--" + Snake(param).Replace('_', '-'),
    };

    private static string Snake(string name)
    {
        if (name.EndsWith("Exception", StringComparison.Ordinal)) name = name[..^"Exception".Length];
        return JsonNamingPolicy.SnakeCaseLower.ConvertName(name);
    }
}
