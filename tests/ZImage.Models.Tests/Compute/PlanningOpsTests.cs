using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Compute;

/// <summary>The planning ops reject exactly what the kernel ops reject, touch no data and download zeros.</summary>
[Collection(ComputeCollection.Name)]
public sealed class PlanningOpsTests(ComputeFixture fx)
{
    private static Tensor Sim(CachingAllocator a, TensorDType dtype, params int[] shape) =>
        new(a.Allocate(Math.Max(1, shape.Aggregate(1L, (x, d) => x * d)) * Tensor.ElementSize(dtype), "test"), dtype, shape);

    public static TheoryData<string> BadCalls() => new(BadCallNames);

    private static readonly string[] BadCallNames =
    [
        "linear-k-mismatch", "linear-y-shape", "linear-bias-length", "rmsnorm-weight-length", "attention-head-dim",
        "attention-gqa", "rope-odd-headdim", "rope-table-shape", "modulate-scale-length", "gated-residual-alias",
        "copyrows-range", "fillrows-width", "patchify-size", "patchify-odd-height", "rgb-dtype", "euler-count", "upload-length",
    ];

    private static void Invoke(IComputeOps ops, string call, Func<TensorDType, int[], Tensor> t)
    {
        switch (call)
        {
            case "linear-k-mismatch": ops.Linear(t(TensorDType.F32, [3, 8]), t(TensorDType.BF16, [4, 7]), null, t(TensorDType.F32, [3, 4])); break;
            case "linear-y-shape": ops.Linear(t(TensorDType.F32, [3, 8]), t(TensorDType.F32, [4, 8]), null, t(TensorDType.F32, [3, 5])); break;
            case "linear-bias-length": ops.Linear(t(TensorDType.F32, [3, 8]), t(TensorDType.F32, [4, 8]), t(TensorDType.F32, [5]), t(TensorDType.F32, [3, 4])); break;
            case "rmsnorm-weight-length": ops.RmsNorm(t(TensorDType.F32, [3, 8]), t(TensorDType.F32, [7]), 1e-5f, t(TensorDType.F32, [3, 8])); break;
            case "attention-head-dim": ops.Attention(t(TensorDType.F32, [4, 2, 8]), t(TensorDType.F32, [4, 2, 4]), t(TensorDType.F32, [4, 2, 4]), 0.3f, false, t(TensorDType.F32, [4, 2, 8])); break;
            case "attention-gqa": ops.Attention(t(TensorDType.F32, [4, 3, 8]), t(TensorDType.F32, [4, 2, 8]), t(TensorDType.F32, [4, 2, 8]), 0.3f, false, t(TensorDType.F32, [4, 3, 8])); break;
            case "rope-odd-headdim": ops.RopeInterleaved(t(TensorDType.F32, [4, 2, 7]), t(TensorDType.F32, [4, 3]), t(TensorDType.F32, [4, 3])); break;
            case "rope-table-shape": ops.RopeInterleaved(t(TensorDType.F32, [4, 2, 8]), t(TensorDType.F32, [3, 4]), t(TensorDType.F32, [3, 4])); break;
            case "modulate-scale-length": ops.Modulate(t(TensorDType.F32, [3, 8]), t(TensorDType.F32, [4]), t(TensorDType.F32, [3, 8])); break;
            case "gated-residual-alias":
                {
                    var x = t(TensorDType.F32, [3, 8]);
                    ops.RmsNormGatedResidual(x, null, null, 1e-5f, x);
                    break;
                }
            case "copyrows-range": ops.CopyRows(t(TensorDType.F32, [3, 8]), 1, t(TensorDType.F32, [3, 8]), 0, 3); break;
            case "fillrows-width": ops.FillRows(t(TensorDType.F32, [7]), t(TensorDType.F32, [3, 8]), 0, 1); break;
            case "patchify-size": ops.Patchify(t(TensorDType.F32, [16, 4, 4]), 4, t(TensorDType.F32, [1, 256])); break;
            case "patchify-odd-height": ops.Patchify(t(TensorDType.F32, [16, 5, 4]), 2, t(TensorDType.F32, [32, 64])); break;
            case "rgb-dtype": ops.ToRgb8(t(TensorDType.F32, [3, 2, 2]), t(TensorDType.F32, [2, 2, 3])); break;
            case "euler-count": ops.EulerStep(t(TensorDType.F32, [16, 2, 2]), t(TensorDType.F32, [16, 2, 3]), -0.1f); break;
            case "upload-length": ops.Upload(new float[5], t(TensorDType.F32, [6])); break;
            default: throw new ArgumentOutOfRangeException(nameof(call), call, "unknown case");
        }
    }

    [Theory]
    [MemberData(nameof(BadCalls))]
    public void PlanningAndKernelOpsRejectTheSameBadCall(string call)
    {
        using var real = fx.CreateAllocator();
        using var sim = new CachingAllocator(new SimulatedDeviceBackend(SimulatedDeviceBackend.Unlimited), ownsBackend: true);
        var realTensors = new List<Tensor>();
        var simTensors = new List<Tensor>();
        try
        {
            var kernelError = Assert.ThrowsAny<ArgumentException>(() => Invoke(fx.Ops, call, (d, s) => Track(realTensors, Sim(real, d, s))));
            var planError = Assert.ThrowsAny<ArgumentException>(() => Invoke(new PlanningComputeOps(), call, (d, s) => Track(simTensors, Sim(sim, d, s))));
            Assert.Equal(kernelError.GetType(), planError.GetType());
            Assert.Equal(kernelError.ParamName, planError.ParamName);
            Assert.Equal(kernelError.Message, planError.Message);
        }
        finally
        {
            realTensors.ForEach(t => t.Dispose());
            simTensors.ForEach(t => t.Dispose());
        }
    }

    private static Tensor Track(List<Tensor> list, Tensor t)
    {
        list.Add(t);
        return t;
    }

    [Fact]
    public void PlanningOpsRunWithoutStorageAndDownloadZeros()
    {
        using var sim = new CachingAllocator(new SimulatedDeviceBackend(SimulatedDeviceBackend.Unlimited), ownsBackend: true);
        var ops = new PlanningComputeOps();
        using var x = Sim(sim, TensorDType.F32, 4, 8);
        using var w = Sim(sim, TensorDType.BF16, 6, 8);
        using var y = Sim(sim, TensorDType.F32, 4, 6);
        using var rgb = Sim(sim, TensorDType.U8, 2, 3, 3);
        using var img = Sim(sim, TensorDType.F32, 3, 2, 3);
        ops.Linear(x, w, null, y);
        ops.ToRgb8(img, rgb);
        Assert.True(ops.IsPlanning);
        Assert.Equal(new float[24], ops.Download(y));
        Assert.Equal(new byte[18], ops.DownloadBytes(rgb));
        Assert.Throws<NotSupportedException>(() => x.F32);
    }
}
