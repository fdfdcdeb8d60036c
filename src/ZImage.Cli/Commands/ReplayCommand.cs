using System.CommandLine;
using Spectre.Console;
using ZImage.Runtime.Memory;

namespace ZImage.Cli.Commands;

/// <summary><c>zimage replay</c>: runs an allocation trace through the caching allocator on a simulated device.</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var trace = new Option<FileInfo>("--trace") { Description = "Trace file (zimage-alloc-trace JSON Lines).", Required = true };
        var conf = CliOptions.Allocator();
        var device = new Option<string?>("--device-bytes") { Description = "Simulated device capacity (e.g. 24GiB or 25769803776); default: the trace header's." };
        var policy = new Option<string>("--policy") { Description = "caching (default) or no-cache.", DefaultValueFactory = _ => "caching" };
        policy.AcceptOnlyFromAmong("caching", "no-cache");
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object with snake_case fields." };
        var command = new Command("replay", "Replay an allocation trace through an allocator policy on a simulated device.")
        {
            trace, conf, device, policy, json,
        };
        command.SetAction(parse => Execute(
            parse.GetValue(trace)!.FullName, parse.GetValue(conf), parse.GetValue(device), parse.GetValue(policy) ?? "caching",
            parse.GetValue(json), Console.Out, Console.Error));
        return command;
    }

    /// <summary>The handler, callable directly: returns 0, or throws for bad input (mapped to exit code 2 by <see cref="CliError"/>).</summary>
    public static int Execute(string tracePath, string? allocConf, string? deviceBytes, string policy, bool json, TextWriter output, TextWriter error)
    {
        AllocationTrace trace;
        AllocatorSettings settings;
        long? capacity = null;
        try
        {
            trace = TraceReader.ReadFile(tracePath);
            settings = AllocatorSettings.Parse(allocConf);
            if (!string.IsNullOrWhiteSpace(deviceBytes))
            {
                capacity = CliOptions.ParseSize("--device-bytes", deviceBytes);
                if (capacity <= 0)
                    throw new CliInputException("--device-bytes", $"--device-bytes must be > 0, got '{deviceBytes}'.");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException("--trace", $"--trace: {ex.Message}", ex);
        }

        Func<IDeviceMemoryBackend, IBlockAllocator> factory = policy == "no-cache"
            ? backend => new NoCacheAllocator(backend)
            : backend => new CachingAllocator(backend, settings);
        var result = TraceReplayer.Replay(trace, factory, capacity);

        if (json)
        {
            output.WriteLine(result.ToJson());
            return 0;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        var table = new Table().AddColumn("statistic").AddColumn(new TableColumn("value").RightAligned());
        table.Title = new TableTitle($"replay of {Markup.Escape(Path.GetFileName(tracePath))}");
        foreach (var (name, value) in result.ToRows())
            table.AddRow(Markup.Escape(name), Markup.Escape(value));
        console.Write(table);
        foreach (var oom in result.OomEvents)
            console.MarkupLine($"[red]OOM[/] at event {oom.EventIndex}: id {oom.Id}, {Markup.Escape(ByteSize.Format(oom.Size))}");
        return 0;
    }
}
