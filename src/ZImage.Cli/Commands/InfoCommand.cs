using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Memory;

namespace ZImage.Cli.Commands;

/// <summary><c>zimage info</c>: which accelerator would be used, its memory, and why there is no GPU if there is none.</summary>
internal static class InfoCommand
{
    // snake_case like every other command's JSON (JsonOut), without the null fields.
    private static readonly JsonSerializerOptions Json = new(JsonOut.Options) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the device report as JSON." };
        var device = DeviceOption.Create();
        var command = new Command("info", "Show the accelerator (CUDA or CPU), its memory, and why CUDA is unavailable if it is.")
        {
            json, device,
        };
        command.SetAction(parse =>
        {
            var choice = DeviceOption.Parse(parse.GetValue(device));
            var options = choice.ToDeviceOptions();
            // info reports; it does not fail over to an error: cuda/cuda:N only decide the exit code (1 without that GPU).
            options.RequireCuda = false;
            var report = DeviceSelector.ProbeReport(options);
            if (parse.GetValue(json))
                Console.Out.WriteLine(JsonSerializer.Serialize(report, Json));
            else
                Print(report);
            return choice.Preference == Runtime.Hosting.DevicePreference.Cuda && report.Kind != AcceleratorKind.Cuda ? 1 : 0;
        });
        return command;
    }

    private static void Print(DeviceReport r)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders().AddColumn("key").AddColumn("value");
        void Row(string key, string? value)
        {
            if (value is not null)
                table.AddRow(Markup.Escape(key), Markup.Escape(value));
        }

        Row("Accelerator", (r.Kind == AcceleratorKind.Cuda ? "CUDA" : "CPU") + " - " + r.DeviceName);
        Row("CUDA", r.CudaStatus + " - " + r.CudaReason);
        Row("CUDA error", r.CudaErrorName is null ? null : $"{r.CudaErrorName} ({r.CudaErrorCode})");
        Row("Driver", r.DriverLibrary is null ? null : r.DriverLibrary + (r.DriverVersionText is null ? "" : ", CUDA " + r.DriverVersionText));
        Row("CUDA devices", r.CudaDeviceCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Row("Compute capability", r.ComputeCapability);
        Row("Memory pools", r.Kind == AcceleratorKind.Cuda ? (r.MemoryPoolsSupported ? "supported" : "not supported") : null);
        Row("Memory", $"{ByteSize.Format(r.FreeBytes)} free of {ByteSize.Format(r.TotalBytes)}");
        Row("NVML", r.NvmlStatus);
        Row("Other processes", r.OtherProcessesBytes is long o ? ByteSize.Format(o) : null);
        AnsiConsole.Write(table);
    }
}
