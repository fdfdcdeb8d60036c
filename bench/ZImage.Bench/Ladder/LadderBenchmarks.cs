using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Runtime.Residency;

namespace ZImage.Bench.Ladder;

/// <summary>
/// One guided denoising step (CFG: positive and negative DiT forwards, the rung's streaming included) of the tiny
/// random-weight model at 64×64 on ILGPU's CPU accelerator, per rung of the ladder: offload none / text-encoder / all,
/// text-encoder offload with VAE tiling (32 px tiles; the tiling shows in the peak, the step time does not decode),
/// and 8-bit weights (int8 resident, int8 streamed, fp8 resident). The time is what BenchmarkDotNet
/// measures; the extra columns come from the rung's exact plan of the same request, made in the host process on the
/// planning twin (the plan is what the real run allocates, which the tests check): peak device bytes (base + the
/// largest stage peak), host bytes of streamed weights and bytes uploaded per step.
/// Run: <c>dotnet run -c Release --project bench/ZImage.Bench -- --filter *Ladder*</c>.
/// </summary>
[Config(typeof(Config))]
public class LadderBenchmarks
{
    private ZImageEngine? _engine;
    private Tensor? _latents, _cap, _neg;

    /// <summary>The rung (offload, then +tiling / 8-bit format).</summary>
    [Params("none", "text-encoder", "text-encoder+tiling", "all", "int8", "int8+all", "fp8")]
    public string Rung { get; set; } = "none";

    internal static ZImageOptions Options(string rung)
    {
        var o = Options(rung.Contains("all", StringComparison.Ordinal) ? OffloadMode.All
            : rung.StartsWith("text-encoder", StringComparison.Ordinal) ? OffloadMode.TextEncoder : OffloadMode.None);
        o.Residency.VaeTiling = rung.EndsWith("+tiling", StringComparison.Ordinal) ? VaeTilingMode.On : VaeTilingMode.Off;
        o.Residency.VaeTileSize = 32;
        o.Residency.Weights = rung.StartsWith("int8", StringComparison.Ordinal) ? WeightFormat.Int8 : rung == "fp8" ? WeightFormat.Fp8 : WeightFormat.Auto;
        return o;
    }

    internal static ZImageOptions Options(OffloadMode offload)
    {
        var o = new ZImageOptions { Device = DevicePreference.Cpu };
        o.Budget.DeviceMemory = "4GiB";
        o.Budget.SystemReserve = "0";
        o.Budget.SizingWidth = 64;
        o.Budget.SizingHeight = 64;
        o.Residency.Offload = offload;
        return o;
    }

    internal static GenerationRequest Request => new() { Prompt = "a lighthouse at dusk", NegativePrompt = "fog", Width = 64, Height = 64, Steps = 1, Guidance = 2f, Seed = 1 };

    /// <summary>Loads the demo engine on the rung and encodes the two captions.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _engine = ZImageEngineFactory.Create(Options(Rung));
        _engine.Load(null, CancellationToken.None);
        _cap = _engine.EncodePrompt(_engine.Tokenize(Request.Prompt, ImagePipeline.MaxPromptTokens));
        _neg = _engine.EncodePrompt(_engine.Tokenize(Request.NegativePrompt!, ImagePipeline.MaxPromptTokens));
        _latents = _engine.CreateLatents(SeededNoise.Create(1, 16 * 8 * 8), 8, 8);
    }

    /// <summary>One guided step.</summary>
    [Benchmark]
    public void GuidedStep()
    {
        var (pos, neg) = _engine!.PredictGuided(_latents!, 0.5f, _cap!, _neg!);
        _engine.CombineGuidance(pos, neg, 2f, 0f);
        _engine.EulerStep(_latents!, pos, -0.01f);
        pos.Dispose();
        neg.Dispose();
    }

    /// <summary>Frees everything.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _latents?.Dispose();
        _cap?.Dispose();
        _neg?.Dispose();
        _engine?.Dispose();
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new PlanColumn("PeakDevice", p => ByteSize.Format(p.BaseBytes + p.RequestPeakBytes)));
            AddColumn(new PlanColumn("Base", p => ByteSize.Format(p.BaseBytes)));
            AddColumn(new PlanColumn("HostBytes", p => ByteSize.Format(p.HostBytes)));
            AddColumn(new PlanColumn("Uploaded/step", p => ByteSize.Format(p.UploadedBytesPerStep)));
            AddColumn(new PlanColumn("Strategy", p => $"{p.Strategy?.OffloadName}/{p.Strategy?.WeightsName}/tiling {(p.Strategy?.VaeTiling == true ? "on" : "off")}"));
        }
    }

    internal static MemoryPlan PlanFor(string rung)
    {
        var options = Options(rung);
        using var engine = ZImageEngineFactory.Create(options);
        using var pipeline = new ImagePipeline(engine.CreatePlanner(1L << 40, engine.Strategy), options);
        return pipeline.Plan(Request);
    }

    private sealed class PlanColumn(string name, Func<MemoryPlan, string> value) : FigureColumn("Ladder." + name, name, name switch
    {
        "PeakDevice" => "Exact plan: base (resident weights + ring slots) + the largest stage peak",
        "Base" => "Exact plan: resident weights + ring slots",
        "HostBytes" => "Exact plan: weights kept in host memory and streamed (and the prompt cache, none here)",
        "Strategy" => "The rung the engine runs",
        _ => "Exact plan: bytes the streamed DiT blocks upload per denoising step (both CFG branches share them)",
    })
    {
        private static readonly Dictionary<string, MemoryPlan> Plans = [];

        protected override string Value(BenchmarkCase benchmarkCase)
        {
            var rung = (string)benchmarkCase.Parameters["Rung"];
            lock (Plans)
            {
                if (!Plans.TryGetValue(rung, out var p)) Plans[rung] = p = PlanFor(rung);
                return value(p);
            }
        }
    }
}
