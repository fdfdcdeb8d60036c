using System.Globalization;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ZImage.Kernels;

namespace ZImage.Runtime.Diagnostics;

/// <summary>The result of compiling one kernel entry point for one CUDA architecture.</summary>
/// <param name="Family">The kernel family (declaring type).</param>
/// <param name="Name">The kernel method with its generic arguments.</param>
/// <param name="Variant"><c>gpu</c> or <c>portable</c> (see <see cref="KernelEntryPoint.Variant"/>).</param>
/// <param name="Arch">The architecture, e.g. <c>sm_89</c>.</param>
/// <param name="Ok">Whether ILGPU's PTX backend compiled it.</param>
/// <param name="Error">The compiler's exception (type and message) when it did not.</param>
/// <param name="PtxLines">Lines of PTX.</param>
/// <param name="LocalBytes"><c>.local</c> bytes other than inline-asm operand slots (stack arrays, spills ILGPU made).</param>
/// <param name="AsmSlotBytes"><c>.local</c> bytes of the 4-byte operand slots that <c>CudaAsm.Emit</c>/<c>EmitRef</c> stage through.</param>
/// <param name="SharedBytes">Static <c>.shared</c> bytes.</param>
/// <param name="Ptx">The PTX text (not serialized; what <c>--out</c> writes).</param>
internal sealed record PtxKernelReport(string Family, string Name, string Variant, string Arch, bool Ok, string? Error,
    int PtxLines, long LocalBytes, long AsmSlotBytes, long SharedBytes, string? Ptx);

/// <summary>
/// Compiles kernels to PTX offline with ILGPU's own PTX backend: no GPU, driver or CUDA toolkit needed. The context is
/// <see cref="IlgpuContexts.CreateCudaAndCpu"/>, the very settings the runtime's CUDA path uses, so a kernel that
/// compiles here compiles when <c>KernelComputeOps</c> loads it on a GPU (a JIT load by the driver remains the only
/// check of the PTX itself).
/// </summary>
internal static partial class PtxCompiler
{
    /// <summary>The architectures checked by default: A100, A10/RTX 30, L4/L40/RTX 40, H100/H200.</summary>
    public static IReadOnlyList<CudaArchitecture> DefaultArchitectures { get; } =
        [new(8, 0), new(8, 6), new(8, 9), new(9, 0)];

    /// <summary>The PTX ISA the backend targets (8.5: CUDA 12.5 and newer drivers).</summary>
    public static CudaInstructionSet InstructionSet { get; } = new(8, 5);

    /// <summary>Parses a comma-separated list such as <c>sm_80,sm_90</c>.</summary>
    /// <exception cref="ArgumentException">An item is not <c>sm_XY</c> with X in 5..9 and Y in 0..9.</exception>
    public static IReadOnlyList<CudaArchitecture> ParseArchitectures(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var result = new List<CudaArchitecture>();
        foreach (string item in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var m = ArchPattern().Match(item);
            if (!m.Success)
                throw new ArgumentException($"Architecture '{item}' is not valid; expected sm_XY with X in 5..9 and Y in 0..9, e.g. sm_80,sm_86,sm_89,sm_90.", nameof(list));
            var arch = new CudaArchitecture(m.Groups[1].Value[0] - '0', m.Groups[2].Value[0] - '0');
            if (!result.Contains(arch))
                result.Add(arch);
        }

        if (result.Count == 0)
            throw new ArgumentException("The architecture list is empty; expected e.g. sm_80,sm_86,sm_89,sm_90.", nameof(list));
        return result;
    }

    /// <summary>The <c>sm_XY</c> name of <paramref name="arch"/>.</summary>
    public static string NameOf(CudaArchitecture arch) =>
        "sm_" + arch.Major.ToString(CultureInfo.InvariantCulture) + arch.Minor.ToString(CultureInfo.InvariantCulture);

    /// <summary>Compiles every entry point for every architecture (entries in order, architectures inner).</summary>
    /// <param name="entries">What to compile, e.g. <see cref="KernelRegistry.Discover"/>.</param>
    /// <param name="architectures">Target architectures.</param>
    public static IReadOnlyList<PtxKernelReport> Compile(IEnumerable<KernelEntryPoint> entries, IEnumerable<CudaArchitecture> architectures)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(architectures);
        var archs = architectures.ToList();
        var list = entries.ToList();
        var reports = new PtxKernelReport[list.Count, archs.Count];
        using var context = IlgpuContexts.CreateCudaAndCpu();
        for (int a = 0; a < archs.Count; a++)
        {
            var arch = archs[a];
            using var backend = new PTXBackend(context, new CudaCapabilityContext(arch), arch, InstructionSet, nvvmAPI: null);
            for (int e = 0; e < list.Count; e++)
                reports[e, a] = CompileOne(backend, list[e], NameOf(arch));
        }

        var result = new List<PtxKernelReport>(list.Count * archs.Count);
        for (int e = 0; e < list.Count; e++)
        {
            for (int a = 0; a < archs.Count; a++)
                result.Add(reports[e, a]);
        }

        return result;
    }

    /// <summary>Writes each compiled report's PTX to <paramref name="directory"/> as <c>Family.Name.arch.ptx</c>; returns the paths.</summary>
    public static IReadOnlyList<string> WritePtx(IEnumerable<PtxKernelReport> reports, string directory)
    {
        ArgumentNullException.ThrowIfNull(reports);
        Directory.CreateDirectory(directory);
        var paths = new List<string>();
        foreach (var r in reports.Where(r => r.Ptx is not null))
        {
            string name = $"{r.Family}.{FileSafe().Replace(r.Name, "_")}.{r.Arch}.ptx";
            string path = Path.Combine(directory, name);
            File.WriteAllText(path, r.Ptx);
            paths.Add(path);
        }

        return paths;
    }

    private static PtxKernelReport CompileOne(PTXBackend backend, KernelEntryPoint entry, string arch)
    {
        try
        {
            var description = entry.IsExplicitlyGrouped
                ? EntryPointDescription.FromExplicitlyGroupedKernel(entry.Method)
                : EntryPointDescription.FromImplicitlyGroupedKernel(entry.Method);
            var compiled = (PTXCompiledKernel)backend.Compile(description, KernelSpecialization.Empty);
            var stats = PtxStatistics.Of(compiled.PTXAssembly);
            return new PtxKernelReport(entry.Family, entry.Name, entry.Variant, arch, true, null, stats.Lines,
                stats.LocalBytes, stats.AsmSlotBytes, stats.SharedBytes, compiled.PTXAssembly);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Any compiler failure is the result being reported (NotSupportedIntrinsicException, InternalCompilerException, ...).
            var inner = ex.InnerException is null ? "" : " (" + ex.InnerException.GetType().Name + ": " + ex.InnerException.Message + ")";
            return new PtxKernelReport(entry.Family, entry.Name, entry.Variant, arch, false, ex.GetType().Name + ": " + ex.Message + inner,
                0, 0, 0, 0, null);
        }
    }

    [GeneratedRegex(@"^sm_([5-9])([0-9])$")]
    private static partial Regex ArchPattern();

    [GeneratedRegex(@"[^A-Za-z0-9_.-]")]
    private static partial Regex FileSafe();
}
