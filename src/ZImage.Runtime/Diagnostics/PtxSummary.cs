namespace ZImage.Runtime.Diagnostics;

/// <summary>Totals of an offline PTX compilation, and whether it passes (no failure, no <c>.local</c> in a GPU variant).</summary>
/// <param name="EntryPoints">Distinct entry points compiled.</param>
/// <param name="Architectures">Distinct architectures.</param>
/// <param name="Compiled">Successful compilations.</param>
/// <param name="Failed">Failed compilations.</param>
/// <param name="GpuKernelsWithLocalMemory">Compilations of GPU-variant kernels with <see cref="PtxKernelReport.LocalBytes"/> above 0.</param>
internal sealed record PtxSummary(int EntryPoints, int Architectures, int Compiled, int Failed, int GpuKernelsWithLocalMemory)
{
    /// <summary>Whether every kernel compiled and no GPU-variant kernel uses <c>.local</c> memory.</summary>
    public bool Passed => Failed == 0 && GpuKernelsWithLocalMemory == 0 && Compiled > 0;

    /// <summary>Sums <paramref name="reports"/>.</summary>
    public static PtxSummary Of(IReadOnlyCollection<PtxKernelReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        return new PtxSummary(
            reports.Select(r => (r.Family, r.Name)).Distinct().Count(),
            reports.Select(r => r.Arch).Distinct(StringComparer.Ordinal).Count(),
            reports.Count(r => r.Ok),
            reports.Count(r => !r.Ok),
            reports.Count(r => r.Ok && r.Variant == "gpu" && r.LocalBytes > 0));
    }

    /// <summary>One JSON row of the <c>kernels</c> array (everything but the PTX text).</summary>
    public static object Row(PtxKernelReport r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new { r.Family, r.Name, r.Variant, r.Arch, r.Ok, r.Error, r.PtxLines, r.LocalBytes, r.AsmSlotBytes, r.SharedBytes };
    }
}
