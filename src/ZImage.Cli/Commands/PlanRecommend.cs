using Spectre.Console;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Residency;

namespace ZImage.Cli.Commands;

/// <summary>
/// <c>zimage plan --recommend</c>: per card size and mode, the largest resolution whose auto-chosen rung fits, from exact
/// plans (the inference segment of each plan is sized for the candidate resolution itself, with CFG).
/// </summary>
internal static class PlanRecommend
{
    public static readonly int[] CardsGiB = [6, 8, 12, 16, 24, 48];

    public static int Run(ZImageOptions options, Func<ResidencyStrategy, GenerationRequest, long, MemoryPlan> plan, bool json, string modelName)
    {
        var sizes = new (int W, int H)[] { (2048, 2048), (1536, 1536), (1024, 1024), (1024, 576), (768, 768), (512, 512) };
        var rows = new List<(int Card, GenerationMode Mode, int W, int H, ResidencyStrategy? Strategy, long Peak)>();
        foreach (int card in CardsGiB)
        {
            long device = card * ByteSize.GiB;
            foreach (var mode in new[] { GenerationMode.Turbo, GenerationMode.Standard })
            {
                (int, int, ResidencyStrategy?, long) found = (0, 0, null, 0);
                foreach (var (w, h) in sizes)
                {
                    var request = new GenerationRequest { Prompt = "", Width = w, Height = h, Mode = mode, Steps = 1 };
                    var (s, p) = StrategyChooser.Choose(options.Residency, WeightFormat.BF16, st => plan(st, request, device));
                    if (p.Fits) { found = (w, h, s, p.RequestPeakBytes); break; }
                }
                rows.Add((card, mode, found.Item1, found.Item2, found.Item3, found.Item4));
            }
        }
        if (json)
        {
            JsonOut.Write(new
            {
                model = modelName,
                cards = rows.Select(r => new
                {
                    device_gib = r.Card, mode = r.Mode, width = r.W, height = r.H, fits = r.Strategy is not null,
                    strategy = ResidencyCliOptions.Json(r.Strategy), request_peak_bytes = r.Peak,
                }),
            });
            return 0;
        }
        var table = new Table().AddColumns("card", "mode", "largest size", "offload", "weights", "peak");
        foreach (var r in rows)
            table.AddRow($"{r.Card} GiB", r.Mode.ToString(), r.Strategy is null ? "nothing fits" : $"{r.W}×{r.H}", r.Strategy?.OffloadName ?? "-", r.Strategy?.WeightsName ?? "-",
                r.Strategy is null ? "-" : ByteSize.Format(r.Peak));
        AnsiConsole.MarkupLine($"[bold]Recommendations[/] for {Markup.Escape(modelName)} (exact plans; default carve-up: 512 MiB system reserve, 0.7 GiB buffer)");
        AnsiConsole.Write(table);
        return 0;
    }
}
