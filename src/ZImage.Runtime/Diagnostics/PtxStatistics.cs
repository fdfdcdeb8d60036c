using System.Globalization;
using System.Text.RegularExpressions;

namespace ZImage.Runtime.Diagnostics;

/// <summary>Line count and memory declarations of one PTX module, as ILGPU 1.5.3's PTX backend writes them.</summary>
/// <param name="Lines">Lines of PTX.</param>
/// <param name="LocalBytes"><c>.local</c> bytes other than inline-asm operand slots.</param>
/// <param name="AsmSlotBytes"><c>.local</c> bytes of inline-asm operand slots.</param>
/// <param name="SharedBytes">Static <c>.shared</c> bytes (dynamic <c>.extern .shared</c> arrays are not counted).</param>
internal sealed partial record PtxStatistics(int Lines, long LocalBytes, long AsmSlotBytes, long SharedBytes)
{
    /// <summary>
    /// Reads <paramref name="ptx"/>. ILGPU declares every <c>.local</c> allocation as <c>__local_depotN[bytes]</c> and
    /// takes its address once (<c>mov.b64 %rdK, __local_depotN;</c>). An operand slot of <c>CudaAsm.Emit</c>/<c>EmitRef</c>
    /// is a 4-byte depot whose address register is only ever dereferenced whole by <c>ld.local</c>/<c>st.local</c>;
    /// anything else (indexed arrays, structs, bigger depots) counts as <see cref="LocalBytes"/>. A one-element
    /// 4-byte stack array accessed only at index 0 would look like a slot: ILGPU promotes those to registers anyway.
    /// </summary>
    public static PtxStatistics Of(string ptx)
    {
        ArgumentNullException.ThrowIfNull(ptx);
        string[] lines = ptx.Split('\n');
        var depots = new Dictionary<string, long>(StringComparer.Ordinal);
        long shared = 0;
        foreach (string line in lines)
        {
            var local = LocalDecl().Match(line);
            if (local.Success)
                depots[local.Groups[1].Value] = long.Parse(local.Groups[2].Value, CultureInfo.InvariantCulture);
            var sh = SharedDecl().Match(line);
            if (sh.Success)
                shared += long.Parse(sh.Groups[1].Value, CultureInfo.InvariantCulture);
        }

        var registerOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in lines)
        {
            var m = DepotAddress().Match(line);
            if (m.Success && depots.ContainsKey(m.Groups[2].Value))
                registerOf[m.Groups[2].Value] = m.Groups[1].Value;
        }

        long slots = 0, other = 0;
        foreach (var (depot, bytes) in depots)
        {
            if (bytes == 4 && registerOf.TryGetValue(depot, out string? reg) && OnlyWholeLocalAccess(lines, reg))
                slots += bytes;
            else
                other += bytes;
        }

        return new PtxStatistics(lines.Length, other, slots, shared);
    }

    private static bool OnlyWholeLocalAccess(string[] lines, string register)
    {
        var use = new Regex(Regex.Escape(register) + @"(?![0-9])", RegexOptions.CultureInvariant);
        foreach (string line in lines)
        {
            if (!use.IsMatch(line) || DepotAddress().IsMatch(line))
                continue;
            string code = line.Trim();
            bool whole = code.Contains("[" + register + "]", StringComparison.Ordinal);
            if (!whole || !(code.StartsWith("ld.local.", StringComparison.Ordinal) || code.StartsWith("st.local.", StringComparison.Ordinal)))
                return false;
        }

        return true;
    }

    [GeneratedRegex(@"^\s*\.local\s+(?:\.align\s+\d+\s+)?\.b8\s+(\w+)\[(\d+)\]")]
    private static partial Regex LocalDecl();

    [GeneratedRegex(@"^\s*\.shared\s+(?:\.align\s+\d+\s+)?\.b8\s+\w+\[(\d+)\]")]
    private static partial Regex SharedDecl();

    [GeneratedRegex(@"^\s*mov\.[bu]64\s+(%rd\d+),\s*(__local_depot\d+);")]
    private static partial Regex DepotAddress();
}
