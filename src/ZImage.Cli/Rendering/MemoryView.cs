using Spectre.Console;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Cli.Rendering;

/// <summary>Spectre renderings of the device carve-up and of plans.</summary>
internal static class MemoryView
{
    /// <summary>The carve-up as a breakdown bar: system reserve, base (green), inference in use / idle (yellow), buffer (gray), free.</summary>
    public static BreakdownChart Bar(MemorySnapshot s)
    {
        var chart = NewChart();
        chart.AddItem("system reserve", Bytes(s.SystemReserveBytes), Color.Grey50);
        chart.AddItem("base (weights)", Bytes(s.BaseBytes), Color.Green);
        if (s.InferenceInUseBytes > 0) chart.AddItem("inference in use", Bytes(s.InferenceInUseBytes), Color.Orange1);
        chart.AddItem(s.InferenceInUseBytes > 0 ? "inference idle" : "inference", Bytes(Math.Max(0, s.InferenceLimitBytes - s.InferenceInUseBytes)), Color.Yellow);
        chart.AddItem("buffer", Bytes(s.BufferBytes), Color.Grey70);
        chart.AddItem("free", Bytes(s.FreeBytes), Color.Grey23);
        return chart;
    }

    /// <summary>The carve-up of a plan as a bar (request peak shown inside the inference segment).</summary>
    public static BreakdownChart Bar(MemoryPlan p)
    {
        var chart = NewChart();
        chart.AddItem("system reserve", Bytes(p.SystemReserveBytes), Color.Grey50);
        chart.AddItem("base (weights)", Bytes(p.BaseBytes), Color.Green);
        long peak = Math.Min(p.RequestPeakBytes, p.InferenceBytes);
        chart.AddItem("request peak", Bytes(peak), p.Fits ? Color.Orange1 : Color.Red);
        chart.AddItem("inference headroom", Bytes(p.InferenceBytes - peak), Color.Yellow);
        chart.AddItem("buffer", Bytes(p.BufferBytes), Color.Grey70);
        chart.AddItem("free", Bytes(Math.Max(0, p.FreeBytes)), Color.Grey23);
        return chart;
    }

    /// <summary>The per-stage table of a plan (planned only) or a result (planned and measured).</summary>
    public static Table Stages(IEnumerable<(string Name, long Planned, long? Measured, TimeSpan? Duration)> stages)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("stage").AddColumn(new TableColumn("planned peak").RightAligned());
        var list = stages.ToList();
        bool measured = list.Any(s => s.Measured is not null);
        if (measured) table.AddColumn(new TableColumn("measured peak").RightAligned()).AddColumn(new TableColumn("time").RightAligned());
        foreach (var s in Compact(list))
        {
            var row = new List<string> { Markup.Escape(s.Name), ByteSize.Format(s.Planned) };
            if (measured) { row.Add(s.Measured is { } m ? ByteSize.Format(m) : ""); row.Add(s.Duration is { } d ? $"{d.TotalMilliseconds:0} ms" : ""); }
            table.AddRow(row.ToArray());
        }
        return table;
    }

    // Long runs of identical denoising steps collapse into one row ("denoise-step-2..25") to keep the table short.
    private static IEnumerable<(string Name, long Planned, long? Measured, TimeSpan? Duration)> Compact(List<(string Name, long Planned, long? Measured, TimeSpan? Duration)> rows)
    {
        for (int i = 0; i < rows.Count; i++)
        {
            int j = i;
            while (j + 1 < rows.Count && rows[j + 1].Name.StartsWith("denoise-step-", StringComparison.Ordinal) && rows[i].Name.StartsWith("denoise-step-", StringComparison.Ordinal)
                   && rows[j + 1].Planned == rows[i].Planned && rows[j + 1].Measured == rows[i].Measured)
                j++;
            if (j - i >= 2)
            {
                var dur = rows.Skip(i).Take(j - i + 1).Aggregate(TimeSpan.Zero, (a, r) => a + (r.Duration ?? TimeSpan.Zero));
                yield return ($"{rows[i].Name}..{rows[j].Name["denoise-step-".Length..]}", rows[i].Planned, rows[i].Measured, rows[i].Duration is null ? null : dur);
                i = j;
            }
            else yield return rows[i];
        }
    }

    // The chart holds bytes; the legend shows them with their unit (e.g. "base (weights) 6.00 MiB").
    private static double Bytes(long bytes) => Math.Max(0, bytes);

    private static BreakdownChart NewChart() => new BreakdownChart()
        .Width(Console.IsOutputRedirected ? 80 : Math.Min(100, Math.Max(40, AnsiConsole.Profile.Width - 4)))
        .UseValueFormatter((value, _) => ByteSize.Format((long)value));
}
