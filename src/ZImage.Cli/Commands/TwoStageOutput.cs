using System.Globalization;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Cli.Commands;

/// <summary>How <c>generate --two-stage</c> reports its explore pass: the extra PNG, the JSON object and the summary line.</summary>
internal static class TwoStageOutput
{
    /// <summary>Writes the explore image beside <paramref name="outPath"/> as <c>NAME-explore.png</c>; returns its full path.</summary>
    public static async Task<string> SaveExploreAsync(TwoStageResult result, string outPath, CancellationToken ct)
    {
        string path = Path.Combine(Path.GetDirectoryName(outPath) ?? "", $"{Path.GetFileNameWithoutExtension(outPath)}-explore{Path.GetExtension(outPath)}");
        await result.Explore.SavePngAsync(path, 0, ct);
        return Path.GetFullPath(path);
    }

    /// <summary>The <c>two_stage</c> object of the JSON output (null without <c>--two-stage</c>).</summary>
    public static object? Json(TwoStageResult? result, string? explorePath) => result is null ? null : new
    {
        explore_output = explorePath,
        explore_width = result.Explore.Parameters.Width,
        explore_height = result.Explore.Parameters.Height,
        refine_strength = result.Refine.Parameters.Strength,
        seed = result.Refine.Parameters.Seed,
        request_peak_bytes = result.Plan.RequestPeakBytes,
        stages = result.Explore.Stages.Select(s => (Name: TwoStageGeneration.ExplorePrefix + s.Name, s.PlannedPeakBytes, s.MeasuredPeakBytes))
            .Concat(result.Refine.Stages.Select(s => (Name: TwoStageGeneration.RefinePrefix + s.Name, s.PlannedPeakBytes, s.MeasuredPeakBytes)))
            .Select(s => new { name = s.Name, planned_peak_bytes = s.PlannedPeakBytes, measured_peak_bytes = s.MeasuredPeakBytes }),
    };

    /// <summary>One line: both passes and the combined peak.</summary>
    public static string Describe(TwoStageResult result)
    {
        var e = result.Explore.Parameters;
        var r = result.Refine.Parameters;
        return string.Create(CultureInfo.InvariantCulture,
            $"two-stage: explored {e.Width}x{e.Height}, refined {r.Width}x{r.Height} at strength {r.Strength:0.###} (seed {r.Seed}); planned peak {ByteSize.Format(result.Plan.RequestPeakBytes)} over both passes");
    }
}
