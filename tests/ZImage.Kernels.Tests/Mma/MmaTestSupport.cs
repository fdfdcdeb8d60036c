using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels.Mma;

namespace ZImage.Kernels.Tests.Mma;

/// <summary>A GPU-shaped CPU accelerator (warp 32) with the mma families compiled once for all emulation tests.</summary>
public sealed class MmaFixture : IDisposable
{
    /// <summary>Why the emulation theories have no per-backend rows (<see cref="Infrastructure.NotPerBackendAttribute"/>).</summary>
    public const string EmulatorIsTheSubject = "the CPU fragment emulator is the subject; on CUDA the same kernels run as mma.sync through KernelComputeOps in the bf16 model parity tests (ZIMAGE_TEST_DEVICE=cuda)";

    /// <summary>Creates the context, the accelerator and the GEMM family.</summary>
    public MmaFixture()
    {
        Context = IlgpuContexts.CreateCpu();
        Accelerator = KernelContext.CreateGpuShapedCpuAccelerator(Context);
        Kernels = new KernelContext(Accelerator, KernelVariant.Gpu);
        Gemm = new MmaGemmKernels(Kernels);
        _attention = new(() => new MmaAttentionKernels(Kernels));
    }

    private readonly Lazy<MmaAttentionKernels> _attention;

    /// <summary>The mma attention family (emulated), compiled on first use.</summary>
    public MmaAttentionKernels Attention => _attention.Value;

    /// <summary>The ILGPU context.</summary>
    public Context Context { get; }

    /// <summary>The GPU-shaped CPU accelerator.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The GPU-variant kernel context on it.</summary>
    public KernelContext Kernels { get; }

    /// <summary>The mma GEMM family (emulated).</summary>
    public MmaGemmKernels Gemm { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Gemm.Dispose();
        Accelerator.Dispose();
        Context.Dispose();
    }
}

/// <summary>The emulator with a chosen lane layout: <see cref="PtxIsaLaneLayout"/> reproduces <see cref="TensorCoreMma"/> on the CPU.</summary>
/// <typeparam name="TLayout">Which lane holds which A/B fragment elements.</typeparam>
public readonly struct LayoutMma<TLayout> : IWarpMma
    where TLayout : struct, IMmaLaneLayout
{
    /// <inheritdoc />
    public uint SharedBase() => 0;

    /// <inheritdoc />
    public void Mma(ref float c0, ref float c1, ref float c2, ref float c3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1) =>
        MmaEmulator.Mma<TLayout>(ref c0, ref c1, ref c2, ref c3, a0, a1, a2, a3, b0, b1);

    /// <inheritdoc />
    public void LdMatrixX4(ArrayView<ushort> shared, uint sharedBase, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3) =>
        MmaEmulator.LdMatrixX4(shared, rowElement, out r0, out r1, out r2, out r3);

    /// <inheritdoc />
    public void LdMatrixX4Trans(ArrayView<ushort> shared, uint sharedBase, int rowElement, out uint r0, out uint r1, out uint r2, out uint r3) =>
        MmaEmulator.LdMatrixX4Trans(shared, rowElement, out r0, out r1, out r2, out r3);

    /// <inheritdoc />
    public void CpAsync16(ArrayView<ushort> shared, uint sharedBase, int sharedElement, ArrayView<ushort> global, ulong globalBase, int globalElement, int validElements) =>
        MmaEmulator.CpAsync16(shared, sharedElement, global, globalElement, validElements);

    /// <inheritdoc />
    public void CommitGroup() { }

    /// <inheritdoc />
    public void WaitGroupAllButOne() { }

    /// <inheritdoc />
    public void WaitAll() { }
}

/// <summary>A wrong A mapping: the k pairs of each row swapped between neighbouring lanes (t ↔ t^1).</summary>
public readonly struct SwappedKPairLayout : IMmaLaneLayout
{
    /// <inheritdoc />
    public int ALane(int row, int kPair) => row * 4 + (kPair ^ 1);

    /// <inheritdoc />
    public int BLane(int col, int kPair) => col * 4 + kPair;
}

/// <summary>A wrong B mapping: columns rotated by one group (lane group g holds column g+1).</summary>
public readonly struct RotatedColumnLayout : IMmaLaneLayout
{
    /// <inheritdoc />
    public int ALane(int row, int kPair) => row * 4 + kPair;

    /// <inheritdoc />
    public int BLane(int col, int kPair) => ((col + 7) & 7) * 4 + kPair;
}

/// <summary>Seeded bf16 test data and float64 references.</summary>
public static class MmaReference
{
    /// <summary>Uniform values in [-scale, scale) rounded to bf16, as floats and as bits.</summary>
    public static (float[] Values, ushort[] Bits) Bf16Random(Random rng, int length, float scale = 1f)
    {
        var values = new float[length];
        var bits = new ushort[length];
        for (int i = 0; i < length; i++)
        {
            bits[i] = Bf16.FromFloat((float)((rng.NextDouble() * 2 - 1) * scale));
            values[i] = Bf16.ToFloat(bits[i]);
        }
        return (values, bits);
    }

    /// <summary>y = x·wᵀ + bias in float64 (x [m,k], w [n,k] row-major).</summary>
    public static double[] Linear(float[] x, float[] w, float[]? bias, int m, int n, int k)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = bias is null ? 0 : bias[j];
            for (int t = 0; t < k; t++) s += (double)x[i * k + t] * w[j * k + t];
            y[i * n + j] = s;
        }
        return y;
    }

    /// <summary>The largest |actual − expected| divided by the largest |expected| (NaN when an output is not finite).</summary>
    public static double RelativeError(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxErr = 0, maxRef = 1e-30;
        for (int i = 0; i < expected.Length; i++)
        {
            if (!float.IsFinite(actual[i])) return double.NaN;
            maxErr = Math.Max(maxErr, Math.Abs(actual[i] - expected[i]));
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
        }
        return maxErr / maxRef;
    }
}
