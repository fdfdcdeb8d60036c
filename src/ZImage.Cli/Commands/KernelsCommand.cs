using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using ZImage.Runtime.Diagnostics;

namespace ZImage.Cli.Commands;

/// <summary>
/// <c>zimage kernels [--ptx [archs]] [--out DIR] [--json]</c>: lists every kernel entry point ZImage loads and, with
/// <c>--ptx</c>, compiles each one offline for the named CUDA architectures (no GPU needed). Exit code 1 when a
/// kernel fails to compile or a GPU-variant kernel uses <c>.local</c> memory.
/// </summary>
internal static class KernelsCommand
{
    private const string DefaultArchs = "sm_80,sm_86,sm_89,sm_90";

    public static Command Create()
    {
        var ptx = new Option<string?>("--ptx")
        {
            Description = $"Compile every kernel to PTX for these architectures (default {DefaultArchs}).",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var output = new Option<string?>("--out") { Description = "Write one .ptx file per kernel and architecture (Family.Kernel.arch.ptx) into this folder." };
        var json = new Option<bool>("--json") { Description = "Print {\"kernels\":[...]} as JSON." };
        var command = new Command("kernels", "List every kernel entry point; with --ptx compile them all for CUDA offline (no GPU needed).")
        {
            ptx, output, json,
        };
        command.SetAction(parse =>
        {
            bool compile = parse.GetResult(ptx) is not null;
            var entries = KernelRegistry.Discover();
            if (!compile)
            {
                if (parse.GetValue(json))
                    JsonOut.Write(new { kernels = entries.Select(e => new { e.Family, e.Name, e.Variant, grouping = e.IsExplicitlyGrouped ? "explicit" : "implicit" }) });
                else
                    PrintEntries(entries);
                return 0;
            }

            IReadOnlyList<ILGPU.Runtime.Cuda.CudaArchitecture> archs;
            try
            {
                archs = PtxCompiler.ParseArchitectures(parse.GetValue(ptx) ?? DefaultArchs);
            }
            catch (ArgumentException ex)
            {
                Console.Error.WriteLine("--ptx: " + ex.Message);
                return 2;
            }

            var reports = PtxCompiler.Compile(entries, archs);
            string? dir = parse.GetValue(output);
            if (dir is not null)
                PtxCompiler.WritePtx(reports, dir);
            var summary = PtxSummary.Of(reports);
            if (parse.GetValue(json))
                JsonOut.Write(new { kernels = reports.Select(PtxSummary.Row), summary });
            else
                PrintReports(reports, summary, dir);
            return summary.Passed ? 0 : 1;
        });
        return command;
    }

    private static void PrintEntries(IReadOnlyList<KernelEntryPoint> entries)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("family").AddColumn("kernel").AddColumn("variant").AddColumn("grouping");
        foreach (var e in entries)
            table.AddRow(Markup.Escape(e.Family), Markup.Escape(e.Name), e.Variant, e.IsExplicitlyGrouped ? "explicit" : "implicit");
        AnsiConsole.Write(table);
        Console.Out.WriteLine($"{entries.Count} entry points.");
    }

    private static void PrintReports(IReadOnlyList<PtxKernelReport> reports, PtxSummary summary, string? dir)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("family").AddColumn("kernel").AddColumn("variant").AddColumn("arch").AddColumn("ok")
            .AddColumn(new TableColumn("ptx lines").RightAligned()).AddColumn(new TableColumn("local B").RightAligned())
            .AddColumn(new TableColumn("asm slot B").RightAligned()).AddColumn(new TableColumn("shared B").RightAligned());
        foreach (var r in reports)
        {
            table.AddRow(Markup.Escape(r.Family), Markup.Escape(r.Name), r.Variant, r.Arch,
                r.Ok ? "[green]yes[/]" : "[red]" + Markup.Escape(r.Error ?? "no") + "[/]",
                Num(r.PtxLines), Num(r.LocalBytes), Num(r.AsmSlotBytes), Num(r.SharedBytes));
        }

        AnsiConsole.Write(table);
        Console.Out.WriteLine($"{summary.EntryPoints} entry points x {summary.Architectures} architectures: {summary.Compiled} compiled, {summary.Failed} failed, {summary.GpuKernelsWithLocalMemory} GPU-variant compilations with .local memory{(dir is null ? "" : "; PTX written to " + dir)}.");
    }

    private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);
}
