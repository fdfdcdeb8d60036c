using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Devices;
using ZImage.Runtime.Memory;

namespace ZImage.Kernels.Tests.Mma;

/// <summary>
/// <see cref="KernelContext.TensorCores"/> routes <see cref="KernelComputeOps"/>' bf16-weight linears and attention to
/// the mma kernels (default on CUDA sm_80+, off elsewhere); here it is forced on a GPU-shaped CPU accelerator so the
/// wiring runs through the fragment emulator.
/// </summary>
[Trait("Category", "MmaEmulation")]
public sealed class TensorCoreDispatchTests(MmaFixture fx) : IClassFixture<MmaFixture>
{
    [Fact]
    public void TensorCoresAreOffOnTheCpuAndCannotBeForcedOnAPortableContext()
    {
        Assert.False(fx.Kernels.TensorCores);
        using var portable = fx.Context.GetCPUDevice(0).CreateCPUAccelerator(fx.Context, CPUAcceleratorMode.Parallel);
        Assert.False(new KernelContext(portable).TensorCores);
        var ex = Assert.Throws<ArgumentException>(() => new KernelContext(portable, KernelVariant.Portable) { TensorCores = true });
        Assert.Contains("TensorCores", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bf16LinearsAndAttentionRunOnTheMmaKernelsWhenTensorCoresAreOn()
    {
        var ctx = new KernelContext(fx.Accelerator, KernelVariant.Gpu) { TensorCores = true };
        using var ops = new KernelComputeOps(ctx);
        using var alloc = new CachingAllocator(new AcceleratorMemoryBackend(fx.Accelerator), ownsBackend: true);
        const int m = 18, n = 24, k = 32;
        var rng = new Random(5);
        var x = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();   // not bf16 values
        var (w, wBits) = MmaReference.Bf16Random(rng, n * k);
        using var tx = new Tensor(alloc.Allocate(x.Length * 4L, "x"), TensorDType.F32, m, k);
        using var tw = new Tensor(alloc.Allocate(wBits.Length * 2L, "w"), TensorDType.BF16, n, k);
        using var ty = new Tensor(alloc.Allocate(m * n * 4L, "y"), TensorDType.F32, m, n);
        ops.Upload(x, tx);
        tw.BF16.CopyFromCPU(wBits);
        ops.Linear(tx, tw, null, ty);
        var y = ops.Download(ty);

        // The mma path rounds activations to bf16 as it stages them; every SIMT path multiplies the fp32 values.
        var xBf16 = x.Select(Bf16.Round).ToArray();
        Assert.True(MmaReference.RelativeError(MmaReference.Linear(xBf16, w, null, m, n, k), y) < 2e-5);
        Assert.True(MmaReference.RelativeError(MmaReference.Linear(x, w, null, m, n, k), y) > 1e-4);

        const int s = 20, dh = 16;
        var (q, _) = MmaReference.Bf16Random(rng, s * dh);
        using var tq = new Tensor(alloc.Allocate(s * dh * 4L, "q"), TensorDType.F32, s, 1, dh);
        using var to = new Tensor(alloc.Allocate(s * dh * 4L, "o"), TensorDType.F32, s, 1, dh);
        ops.Upload(q, tq);
        ops.Attention(tq, tq, tq, 0.25f, causal: true, to);
        var o = ops.Download(to);
        // Causal self-attention of row 0 sees only itself: o[0] = q[0] exactly (weight 1).
        for (int d = 0; d < dh; d++) Assert.Equal(q[d], o[d], 6);
        Assert.All(o, v => Assert.True(float.IsFinite(v)));
    }
}
