using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.TextEncoder;
using ZImage.Runtime.Models.Transformer;
using ZImage.Runtime.Models.Vae;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Pipeline.Tests;

/// <summary>
/// Seeded random weights on a full-size config (the doctor's GPU generation check: the real Turbo config in bf16,
/// no checkpoint), through the same <see cref="IWeightProvider"/> seam as the checkpoint and planning providers so
/// the plan stays exact.
/// </summary>
public sealed class RandomConfigWeightsTests
{
    /// <summary>Records every weight a model asks for and what it got.</summary>
    private sealed class RecordingWeights(IWeightProvider inner) : IWeightProvider
    {
        public List<(string Kind, string Name, string Shape, TensorDType DType)> Requests { get; } = [];
        public TensorDType MatrixDType => inner.MatrixDType;
        public Tensor Matrix(string name, params int[] shape) => Record("matrix", name, inner.Matrix(name, shape));
        public Tensor Vector(string name, params int[] shape) => Record("vector", name, inner.Vector(name, shape));
        public float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim) => inner.GatherRows(name, rows, dim);
        public void Dispose() => inner.Dispose();

        private Tensor Record(string kind, string name, Tensor t)
        {
            Requests.Add((kind, name, string.Join('x', t.Shape), t.DType));
            return t;
        }
    }

    /// <summary>Builds every Turbo model over <paramref name="provider"/> (per component) on a simulated device, as Load does.</summary>
    private static (List<(string, string, string, TensorDType)> Requests, long WeightBytes) BuildTurbo(Func<IDeviceAllocator, IComputeOps, int, IWeightProvider> provider)
    {
        var config = ZImageConfig.Turbo;
        using var allocator = new CachingAllocator(new SimulatedDeviceBackend(64L << 30), AllocatorSettings.Default, ownsBackend: true);
        var ops = new PlanningComputeOps();
        var ctx = new ComputeContext(allocator, ops);
        var te = new RecordingWeights(provider(allocator, ops, 1));
        var tr = new RecordingWeights(provider(allocator, ops, 2));
        var vae = new RecordingWeights(provider(allocator, ops, 3));
        using var textEncoder = new Qwen3TextEncoder(config.TextEncoder, te, ctx);
        using var transformer = new ZImageTransformer(ZImageEngine.TransformerDimsOf(config.Transformer), tr, ctx);
        _ = new VaeDecoder(config.Vae, vae, ctx);
        _ = new VaeEncoder(config.Vae, vae, ctx);
        long bytes = allocator.AllocatedBytes;
        te.Dispose();
        tr.Dispose();
        vae.Dispose();
        return ([.. te.Requests, .. tr.Requests, .. vae.Requests], bytes);
    }

    [Fact]
    public void RealConfigRandomBf16WeightsGiveEveryKeyTheShapeAndDTypeOfThePlanningTwin()
    {
        // Planning ops: the random provider allocates (on the simulated device) but generates nothing, so this costs no memory.
        var random = BuildTurbo((a, ops, seed) => new RandomWeights(a, ops, seed, TensorDType.BF16));
        var planning = BuildTurbo((a, _, _) => new PlanningWeights(a, TensorDType.BF16));

        Assert.Equal(planning.Requests, random.Requests);
        Assert.Equal(planning.WeightBytes, random.WeightBytes);
        Assert.All(random.Requests, r => Assert.Equal(r.Item1 == "matrix" ? TensorDType.BF16 : TensorDType.F32, r.Item4));
        // Every key the checkpoint of that config holds is asked for with its checkpoint shape (the encoder's too).
        var expected = ZImageWeightNames.All(ZImageConfig.Turbo).SelectMany(c => c.Weights).ToDictionary(w => w.Name, w => w.AcceptedShapes, StringComparer.Ordinal);
        var requested = random.Requests.ToDictionary(r => r.Item2, r => r.Item3, StringComparer.Ordinal);
        var unrequested = new List<string>();
        foreach (var (name, shapes) in expected)
        {
            if (!requested.TryGetValue(name, out string? shape)) unrequested.Add(name);
            else Assert.True(shapes.Any(s => string.Join('x', s) == shape), $"{name}: requested {shape}, checkpoint shapes {string.Join(" or ", shapes.Select(s => string.Join('x', s)))}");
        }
        // Not fetched as device weights: the token embedding table (host-resident, read through GatherRows) and what
        // comes after hidden_states[-2] (the last text-encoder layer and its final norm), which Z-Image never computes.
        int last = ZImageConfig.Turbo.TextEncoder.NumHiddenLayers - 1;
        Assert.All(unrequested, name => Assert.True(name.Contains("embed_tokens", StringComparison.Ordinal) || name.StartsWith($"model.layers.{last}.", StringComparison.Ordinal) || name == "model.norm.weight", name));
        Assert.Contains(random.Requests, r => r.Item2.StartsWith("encoder.", StringComparison.Ordinal));
        Assert.True(random.WeightBytes > 10L << 30, $"the Turbo weights in bf16 should exceed 10 GiB, planned {random.WeightBytes} B");
    }

    [Fact]
    public async Task RandomBf16WeightsOnAConfigRunAGenerationWithinItsExactPlanAndReproduce()
    {
        var engine = ZImageEngine.Open(null, new ZImageEngineOptions { ForceCpu = true, RandomConfig = TinyZImageConfig.Config, WeightDType = TensorDType.BF16 });
        var options = new Runtime.Hosting.ZImageOptions();
        options.Budget.DeviceMemory = "2GiB";
        options.Budget.SystemReserve = "0";
        options.Budget.SizingWidth = 32;
        options.Budget.SizingHeight = 32;
        options.Presets.DefaultResolution = null;
        using var pipeline = new ImagePipeline(engine, options);
        await pipeline.StartAsync();
        var request = new GenerationRequest { Prompt = "x", Width = 32, Height = 32, Steps = 1, Seed = 3 };
        var first = await pipeline.GenerateAsync(request);
        var second = await pipeline.GenerateAsync(request);

        Assert.Equal(ZImageEngine.RandomConfigName, engine.Description.ModelName);
        byte[] pixels = first.Images[0].Pixels;
        Assert.Equal(pixels, second.Images[0].Pixels);
        Assert.Contains(pixels, p => p != pixels[0]); // not a constant image
        Assert.All(first.Stages, s => Assert.True(s.MeasuredPeakBytes <= s.PlannedPeakBytes, $"{s.Name}: measured {s.MeasuredPeakBytes} B > planned {s.PlannedPeakBytes} B"));
        // bf16 matrices: exactly what the bf16 planner of that config counts, and fewer bytes than f32 matrices.
        long Planned(TensorDType dtype)
        {
            using var planner = ZImageEngine.CreatePlanning(TinyZImageConfig.Config, 2L << 30, matrixDType: dtype);
            planner.Load(null, CancellationToken.None);
            return planner.GetMemoryStats().WeightBytes;
        }
        long weights = engine.GetMemoryStats().WeightBytes;
        Assert.Equal(Planned(TensorDType.BF16), weights);
        Assert.True(weights < Planned(TensorDType.F32));
    }
}
