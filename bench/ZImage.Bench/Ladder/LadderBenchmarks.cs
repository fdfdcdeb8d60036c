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
/// random-weight model at 64×64 on ILGPU's CPU accelerator, per offload rung. The time is what BenchmarkDotNet
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

    /// <summary>The rung.</summary>
    [Params(OffloadMode.None, OffloadMode.TextEncoder, OffloadMode.All)]
    public OffloadMode Offload { get; set; }

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
        _engine = ZImageEngineFactory.Create(Options(Offload));
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
        }
    }

    internal static MemoryPlan PlanFor(OffloadMode offload)
    {
        var options = Options(offload);
        using var engine = ZImageEngineFactory.Create(options);
        using var pipeline = new ImagePipeline(engine.CreatePlanner(1L << 40, engine.Strategy), options);
        return pipeline.Plan(Request);
    }

    private sealed class PlanColumn(string name, Func<MemoryPlan, string> value) : FigureColumn("Ladder." + name, name, name switch
    {
        "PeakDevice" => "Exact plan: base (resident weights + ring slots) + the largest stage peak",
        "Base" => "Exact plan: resident weights + ring slots",
        "HostBytes" => "Exact plan: weights kept in host memory and streamed",
        _ => "Exact plan: bytes the streamed DiT blocks upload per denoising step (both CFG branches share them)",
    })
    {
        private static readonly Dictionary<OffloadMode, MemoryPlan> Plans = [];

        protected override string Value(BenchmarkCase benchmarkCase)
        {
            var offload = (OffloadMode)benchmarkCase.Parameters["Offload"];
            lock (Plans)
            {
                if (!Plans.TryGetValue(offload, out var p)) Plans[offload] = p = PlanFor(offload);
                return value(p);
            }
        }
    }
}
