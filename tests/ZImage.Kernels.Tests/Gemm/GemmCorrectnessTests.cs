using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels.Tests.Infrastructure;
using IlgpuHalf = ILGPU.Half;

namespace ZImage.Kernels.Tests.Gemm;

/// <summary>Which stored weight dtype a GEMM test uses.</summary>
public enum WeightType
{
    /// <summary>float32.</summary>
    F32,
    /// <summary>bfloat16 bits.</summary>
    Bf16,
    /// <summary>ILGPU float16.</summary>
    F16,
}

/// <summary>
/// Both GEMM variants match a float64 reference on every backend for every weight dtype, with and without bias, on shapes that are
/// not multiples of any tile or micro-block (the GPU variant at tiny sizes: it is simulated thread by thread).
/// </summary>
[Collection(GemmAcceleratorCollection.Name)]
public sealed class GemmCorrectnessTests(GemmAcceleratorFixture fx)
{
    /// <summary>Shapes × dtypes × bias for the portable variant.</summary>
    public static TheoryData<int, int, int, WeightType, bool> PortableCases()
    {
        var data = new TheoryData<int, int, int, WeightType, bool>();
        int[][] shapes = [[1, 1, 1], [1, 3, 5], [7, 65, 70], [33, 3, 5], [33, 65, 70], [64, 64, 64], [5, 130, 300], [70, 131, 33]];
        foreach (int[] s in shapes)
        foreach (WeightType t in Enum.GetValues<WeightType>())
        {
            data.Add(s[0], s[1], s[2], t, true);
            data.Add(s[0], s[1], s[2], t, false);
        }
        return data;
    }

    /// <summary>Tiny shapes for the (simulated) GPU variant: partial tiles in every dimension, several groups.</summary>
    public static TheoryData<int, int, int, WeightType, bool> GpuCases()
    {
        var data = new TheoryData<int, int, int, WeightType, bool>
        {
            { 1, 3, 5, WeightType.F32, true },
            { 7, 65, 70, WeightType.F32, false },
            { 33, 65, 70, WeightType.Bf16, true },
            { 65, 3, 33, WeightType.F16, true },
            { 7, 65, 70, WeightType.Bf16, false },
            { 33, 3, 5, WeightType.F16, false },
        };
        return data;
    }

    /// <summary>Every backend: portable cases on the CPU, tiny cases on the GPU-shaped CPU, all of them on CUDA if present.</summary>
    public static TheoryData<KernelBackend, int, int, int, WeightType, bool> Cases() => KernelBackends.Matrix(PortableCases(), GpuCases());

    /// <summary>Each backend's variant (the GPU one: shared-memory tiles, barriers) matches the float64 reference.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64Reference(KernelBackend backend, int m, int n, int k, WeightType type, bool bias) =>
        Check(backend, m, n, k, type, bias,
            seed: backend == KernelBackend.CpuGpuShaped ? m * 104729 + n * 17 + k : m * 7919 + n * 31 + k);

    private void Check(KernelBackend backend, int m, int n, int k, WeightType type, bool withBias, int seed)
    {
        var rng = new Random(seed);
        float[] x = GemmReference.Random(rng, m * k);
        float[] w = GemmReference.Random(rng, n * k);
        float[]? b = withBias ? GemmReference.Random(rng, n) : null;
        GemmKernels gemm = fx.Gemm(backend);
        var acc = gemm.Context.Accelerator;

        using var xb = GemmAcceleratorFixture.Upload(acc, x);
        using var yb = GemmAcceleratorFixture.Poisoned(acc, m * n);
        using var bb = GemmAcceleratorFixture.Upload(acc, b ?? new float[1]);
        ArrayView<float> biasView = withBias ? bb.View : default;
        switch (type)
        {
            case WeightType.F32:
            {
                using var wb = GemmAcceleratorFixture.Upload(acc, w);
                gemm.Linear(xb.View, wb.View, biasView, yb.View, m, n, k);
                acc.Synchronize();
                break;
            }
            case WeightType.Bf16:
            {
                ushort[] bits = w.Select(Bf16.FromFloat).ToArray();
                w = bits.Select(Bf16.ToFloat).ToArray(); // the reference uses exactly the stored weights
                using var wb = GemmAcceleratorFixture.Upload(acc, bits);
                gemm.Linear(xb.View, wb.View, biasView, yb.View, m, n, k);
                acc.Synchronize();
                break;
            }
            default:
            {
                IlgpuHalf[] halves = w.Select(v => (IlgpuHalf)v).ToArray();
                w = halves.Select(h => (float)h).ToArray();
                using var wb = GemmAcceleratorFixture.Upload(acc, halves);
                gemm.Linear(xb.View, wb.View, biasView, yb.View, m, n, k);
                acc.Synchronize();
                break;
            }
        }

        var (expected, magnitude) = GemmReference.Linear(x, w, b, m, n, k);
        GemmReference.AssertClose(expected, magnitude, yb.GetAsArray1D(), 1e-6 * Math.Sqrt(k), $"{backend} {type} {m}x{n}x{k} bias={withBias}");
    }
}
