using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Server;

/// <summary>
/// The resolution presets the page offers, each with its exact planned peak per mode and whether the inference
/// segment admits it (<c>GET /v1/sizes</c>). Plans are exact (a planning run on a simulated device), computed once
/// the model is loaded and cached, since the carve-up does not change afterwards.
/// </summary>
public sealed class SizeCatalog(IImagePipeline pipeline)
{
    private static readonly (string Label, int Width, int Height)[] Presets =
    [
        ("64×64", 64, 64), ("128×128", 128, 128), ("256×256", 256, 256), ("512×512", 512, 512),
        ("768×768", 768, 768), ("1024×1024", 1024, 1024), ("1024×576 (16:9)", 1024, 576), ("576×1024 (9:16)", 576, 1024),
    ];

    private IReadOnlyList<SizeEntry>? _cached;

    /// <summary>One preset and its verdict per mode.</summary>
    public sealed record SizeEntry(string Label, int Width, int Height, IReadOnlyDictionary<string, ModeFit> Modes);

    /// <summary>Whether a preset fits in one mode and its planned peak.</summary>
    public sealed record ModeFit(bool Fits, long PeakBytes, string Peak, string Verdict);

    /// <summary>Every preset with its verdicts.</summary>
    public IReadOnlyList<SizeEntry> Get()
    {
        if (_cached is { } c) return c;
        var list = new List<SizeEntry>();
        foreach (var (label, w, h) in Presets)
        {
            var modes = new Dictionary<string, ModeFit>();
            foreach (var mode in Enum.GetValues<GenerationMode>())
            {
                var plan = pipeline.Plan(new GenerationRequest { Prompt = "size check", Width = w, Height = h, Mode = mode, Seed = 0 });
                modes[mode.ToString().ToLowerInvariant()] = new ModeFit(plan.Fits, plan.RequestPeakBytes, ByteSize.Format(plan.RequestPeakBytes), plan.Describe());
            }
            list.Add(new SizeEntry(label, w, h, modes));
        }
        if (pipeline.IsStarted) _cached = list;
        return list;
    }
}
