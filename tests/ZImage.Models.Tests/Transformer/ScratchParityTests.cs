using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Transformer;
using ZImage.Tests.Infrastructure;
using Xunit.Abstractions;

namespace ZImage.Models.Tests.Transformer;

[Collection(ComputeCollection.Name)]
public class ScratchParityTests(ITestOutputHelper output, ComputeFixture fx)
{
    private sealed class DictWeights(IDeviceAllocator alloc, Dictionary<string, (string DType, int[] Shape, float[] Data)> data) : IWeightProvider
    {
        private readonly Dictionary<string, Tensor> _cache = new();
        public TensorDType MatrixDType => TensorDType.F32;
        public Tensor Matrix(string name, params int[] shape) => Vector(name, shape);
        public Tensor Vector(string name, params int[] shape)
        {
            if (_cache.TryGetValue(name, out var t)) return t;
            var (_, s, d) = data[name];
            Assert.Equal(s, shape);
            t = new Tensor(alloc.Allocate(d.Length * 4L, "weights"), TensorDType.F32, shape);
            t.F32.CopyFromCPU(d);
            return _cache[name] = t;
        }
        public float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim) => throw new NotSupportedException();
        public void Dispose() { foreach (var t in _cache.Values) t.Dispose(); }
    }

    [Fact]
    public void HostOpsMatchReference()
    {
        using var alloc = fx.CreateAllocator();
        var dir = Path.Combine(FixturePaths.TinyCheckpoint, "transformer");
        var w = MiniSafetensors.Read(Directory.GetFiles(dir, "*.safetensors"));
        var dims = new TransformerDims
        {
            InChannels = 16, PatchSize = 2, Dim = 64, Heads = 2, Layers = 2, RefinerLayers = 1, CapFeatDim = 32, NormEps = 1e-5f,
            RopeTheta = 256, TScale = 1000, AxesDims = [8, 12, 12], AxesLens = [1536, 512, 512],
        };
        IComputeOps ops = Environment.GetEnvironmentVariable("HOSTOPS") == "1" ? new HostReferenceOps() : fx.Ops;
        using var weights = new DictWeights(alloc, w);
        var model = new ZImageTransformer(dims, weights, new ComputeContext(alloc, ops));
        foreach (var file in Directory.GetFiles(Path.Combine(FixturePaths.ReferenceDir, "transformer"), "tr_*L*.safetensors"))
        {
            if (file.Contains("batch")) continue;
            var r = MiniSafetensors.Read(file);
            var x = r["x"];
            using var lat = new Tensor(alloc.Allocate(x.Data.Length * 4, "t"), TensorDType.F32, 16, x.Shape[2], x.Shape[3]);
            lat.F32.CopyFromCPU(x.Data);
            var cf = r["cap_feats"];
            using var cap = new Tensor(alloc.Allocate(cf.Data.Length * 4, "t"), TensorDType.F32, cf.Shape);
            cap.F32.CopyFromCPU(cf.Data);
            model.StageObserver = (name, t) =>
            {
                if (!r.TryGetValue("debug/" + name, out var refT)) return;
                var got = HostReferenceOps.Get(t);
                double max = 0;
                for (int i = 0; i < got.Length; i++) max = Math.Max(max, Math.Abs(got[i] - refT.Data[i]));
                output.WriteLine($"  {name}: {max:g3}");
            };
            using var o = model.Forward(lat, r["t"].Data[0], cap);
            var got = HostReferenceOps.Get(o);
            double maxAbs = got.Select((v, i) => Math.Abs(v - r["out"].Data[i])).Max();
            output.WriteLine($"{Path.GetFileName(file)}: out max abs {maxAbs:g3}");
            Assert.True(maxAbs < 1e-4, $"{file}: {maxAbs}");
        }
    }
}
