using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Diagnostics;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;

namespace ZImage.Cli.Commands;

/// <summary>
/// <c>zimage doctor [--json] [--quick] [--device auto|cpu|cuda|cuda:N] [--fixtures DIR]</c>: a self-check of this
/// machine. Sections <c>device</c>, <c>kernels</c> (every kernel family against float64 host references, real model
/// shapes on a GPU, small ones on the CPU), <c>parity</c> (the tiny-checkpoint reference cases when the fixtures are
/// found), <c>generation</c> (seeded random-weight runs: stage times, allocator peaks against the exact plan, the
/// device's own used memory against the BudgetGuard carve-up) and <c>throughput</c>. Exit code 1 on any failure.
/// </summary>
internal static class DoctorCommand
{
    // NaN marks an error that could not be measured (a check that threw); JSON has no NaN, so it is written as "NaN".
    private static readonly JsonSerializerOptions Json = new(JsonOut.Options) { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object with the sections device, kernels, parity, generation, throughput." };
        var quick = new Option<bool>("--quick") { Description = "Device, kernels and throughput only (skip the parity cases and the generation runs)." };
        var device = DeviceOption.Create();
        device.Description = "The device to check: " + DeviceOption.Allowed + "; cuda and cuda:N fail the check when that GPU is not usable.";
        var fixtures = new Option<string?>("--fixtures") { Description = "The shared fixtures folder (tiny-zimage, tiny-zimage-reference); default: ZIMAGE_FIXTURES or shared/fixtures beside the checkout." };
        var command = new Command("doctor", "Self-check of this machine: device, every kernel against a host reference, reference parity, generation memory against the plan, throughput.")
        {
            json, quick, device, fixtures,
        };
        command.SetAction(async (parse, ct) =>
        {
            bool asJson = parse.GetValue(json), isQuick = parse.GetValue(quick);
            var choice = DeviceOption.Parse(parse.GetValue(device));
            string? fixturesDir = parse.GetValue(fixtures);
            if (fixturesDir is not null && !Directory.Exists(fixturesDir))
                throw new CliInputException("--fixtures", $"--fixtures '{fixturesDir}' does not exist; allowed: a folder holding tiny-zimage and tiny-zimage-reference.");

            var sw = Stopwatch.StartNew();
            DoctorDevice deviceSection;
            DoctorKernels kernels;
            bool isCuda;
            var selection = choice.ToDeviceOptions();
            selection.RequireCuda = false; // a missing GPU is reported in the device section, not thrown
            using (var selected = DeviceSelector.Select(selection))
            {
                isCuda = selected.IsCuda;
                deviceSection = Doctor.DescribeDevice(selected, requireCuda: choice.Preference == DevicePreference.Cuda);
                kernels = Doctor.CheckKernels(selected);
            }

            bool forceCpu = !isCuda;
            DoctorParity parity;
            if (isQuick) parity = new DoctorParity(false, "--quick skips the parity cases", null, []);
            else
            {
                string? found = DoctorParityCheck.FindFixtures(fixturesDir, out string looked);
                parity = await DoctorParityCheck.RunAsync(found, forceCpu, choice.Index,
                    $"the tiny-checkpoint fixtures (tiny-zimage, tiny-zimage-reference) were not found; looked in {looked}; pass --fixtures DIR", ct);
            }
            var plan = DoctorGenerationPlan.For(isCuda);
            var generation = isQuick ? new DoctorGeneration(false, plan.Model, [], 0) : await DoctorGenerationCheck.RunAsync(plan, forceCpu, choice.Index, ct);
            bool passed = deviceSection.Ok && kernels.Ok && parity.Ok && generation.Ok;
            var report = new
            {
                passed,
                seconds = sw.Elapsed.TotalSeconds,
                device = deviceSection,
                kernels = new { shapes = kernels.Shapes, seed = kernels.Seed, ok = kernels.Ok, seconds = kernels.Seconds, checks = kernels.Checks },
                parity = new { ran = parity.Ran, ok = parity.Ok, reason = parity.Reason, fixtures = parity.Fixtures, cases = parity.Cases },
                generation = new { ran = generation.Ran, ok = generation.Ok, model = generation.Model, seconds = generation.Seconds, runs = generation.Runs },
                throughput = kernels.Throughput,
            };
            if (asJson)
                Console.Out.WriteLine(JsonSerializer.Serialize(report, Json));
            else
                Print(deviceSection, kernels, parity, generation, passed, sw.Elapsed);
            return passed ? 0 : 1;
        });
        return command;
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    private static void Print(DoctorDevice d, DoctorKernels k, DoctorParity parity, DoctorGeneration gen, bool passed, TimeSpan elapsed)
    {
        AnsiConsole.MarkupLine($"[bold]device[/] {Markup.Escape(d.Kind)} - {Markup.Escape(d.Name)}" +
            (d.ComputeCapability is null ? "" : $", sm {d.ComputeCapability}") + $", {ByteSize.Format(d.FreeBytes)} free of {ByteSize.Format(d.TotalBytes)}" +
            (d.DriverVersion is null ? "" : $", driver CUDA {d.DriverVersion}") + (d.Ok ? "" : " [red]FAIL[/]"));
        AnsiConsole.MarkupLine($"  CUDA: {Markup.Escape(d.CudaStatus)} - {Markup.Escape(d.CudaReason)}");
        var table = new Table().Border(TableBorder.Rounded).AddColumn($"kernel check ({Markup.Escape(k.Shapes)} shapes)").AddColumn("shape").AddColumn("ok")
            .AddColumn(new TableColumn("max error").RightAligned()).AddColumn(new TableColumn("tolerance").RightAligned()).AddColumn(new TableColumn("ms").RightAligned());
        foreach (var c in k.Checks)
        {
            table.AddRow(Markup.Escape(c.Name), Markup.Escape(c.Shape), c.Ok ? "[green]yes[/]" : "[red]" + Markup.Escape(c.Detail ?? "no") + "[/]",
                F(c.MaxError, "E2"), F(c.Tolerance, "E0"), F(c.Seconds * 1e3, "0.###"));
        }
        AnsiConsole.Write(table);
        foreach (var t in k.Throughput)
            AnsiConsole.MarkupLine($"[bold]throughput[/] {Markup.Escape(t.Name)} {Markup.Escape(t.Shape)}: {F(t.Tflops, "0.000")} TFLOP/s ({F(t.Seconds * 1e3, "0.###")} ms)");
        if (!parity.Ran) AnsiConsole.MarkupLine($"[bold]parity[/] not run: {Markup.Escape(parity.Reason ?? "")}");
        foreach (var c in parity.Cases)
        {
            AnsiConsole.MarkupLine($"[bold]parity[/] {Markup.Escape(c.Case)} ({Markup.Escape(c.Kind)}): {(c.Ok ? "[green]ok[/]" : "[red]FAIL[/]")} max error {F(c.MaxError, "G3")} (tolerance {F(c.Tolerance, "G3")}), {F(c.Seconds, "0.00")} s" +
                (c.Detail is null ? "" : " - " + Markup.Escape(c.Detail)));
        }
        if (!gen.Ran) AnsiConsole.MarkupLine($"[bold]generation[/] not run (--quick)");
        foreach (var g in gen.Runs)
        {
            AnsiConsole.MarkupLine($"[bold]generation[/] {Markup.Escape(gen.Model)} {g.Width}x{g.Height}, {g.Steps} steps: {(g.Ok ? "[green]ok[/]" : "[red]FAIL[/]")} in {F(g.TotalMs, "0")} ms" +
                (g.Detail is null ? "" : " - " + Markup.Escape(g.Detail)));
            foreach (var s in g.Stages)
                AnsiConsole.MarkupLine($"  {Markup.Escape(s.Name)}: {F(s.Ms, "0.#")} ms, allocator peak {ByteSize.Format(s.MeasuredPeakBytes)} of planned {ByteSize.Format(s.PlannedPeakBytes)}{(s.Ok ? "" : " [red]over the plan[/]")}");
            AnsiConsole.MarkupLine(g.DeviceUsedPeakBytes is long u
                ? $"  device used (cuMemGetInfo) {ByteSize.Format(u)} of carve-up {ByteSize.Format(g.CarveUpBytes)}{(g.DeviceUsedWithinCarveUp == true ? "" : " [red]over the carve-up[/]")}"
                : $"  device used: {Markup.Escape(g.DeviceMemoryNote ?? "not sampled")} (carve-up {ByteSize.Format(g.CarveUpBytes)})");
        }
        AnsiConsole.MarkupLine((passed ? "[green]PASSED[/]" : "[red]FAILED[/]") + $" in {F(elapsed.TotalSeconds, "0.0")} s");
    }
}
