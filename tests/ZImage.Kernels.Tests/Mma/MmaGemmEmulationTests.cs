using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels.Mma;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Mma;

/// <summary>
/// The tensor-core GEMM's real tile, pipeline, swizzle, fragment and epilogue logic, run on the CPU accelerator
/// through the exact fragment emulator, against a float64 reference at tiny ragged shapes.
/// </summary>
[Trait("Category", "MmaEmulation")]
public sealed class MmaGemmEmulationTests(MmaFixture fx) : IClassFixture<MmaFixture>
{
    // Tolerance: inputs are bf16 values, products exact, fp32 accumulation: ~1e-6 of the output scale.
    private const double Tol = 2e-5;

    public static TheoryData<int, int, int, bool, int, int> Shapes => new()
    {
        // m, n, k, bf16 activations, warpsM, warpsN
        { 20, 72, 72, false, 1, 1 },   // ragged M and N (two blocks along N), K % 8 == 0 (W through cp.async), 3 K tiles: the ring wraps
        { 17, 60, 37, true, 1, 1 },    // K % 8 != 0: every operand staged element by element, ragged last K chunk
        { 16, 8, 16, true, 1, 1 },     // one mma tile, mostly padding
        { 40, 64, 32, true, 2, 1 },    // two warps along M (the second one ragged), bf16 activations through cp.async
        { 24, 100, 32, false, 1, 2 },  // two warps along N, the second one ragged
    };

    [NotPerBackend(MmaFixture.EmulatorIsTheSubject)]
    [Theory]
    [MemberData(nameof(Shapes))]
    public void GemmMatchesTheFloat64ReferenceOnRaggedShapes(int m, int n, int k, bool bf16Activations, int warpsM, int warpsN)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        var (x, xBits) = MmaReference.Bf16Random(rng, m * k);
        var (w, wBits) = MmaReference.Bf16Random(rng, n * k);
        var bias = MmaReference.Bf16Random(rng, n).Values;
        var expected = MmaReference.Linear(x, w, bias, m, n, k);

        var actual = Run(m, n, k, new MmaTiling(warpsM, warpsN), bf16Activations ? xBits : null, x, wBits, bias, MmaEpilogue.None);

        Assert.True(MmaReference.RelativeError(expected, actual) < Tol, $"relative error {MmaReference.RelativeError(expected, actual):E3}");
    }

    [NotPerBackend(MmaFixture.EmulatorIsTheSubject)]
    [Theory]
    [InlineData(MmaEpilogue.Silu, false)]
    [InlineData(MmaEpilogue.SwiGlu, true)]
    [InlineData(MmaEpilogue.GatedResidual, false)]
    public void FusedEpiloguesMatchTheReferenceInFp32AndBf16Output(MmaEpilogue epilogue, bool bf16Output)
    {
        const int m = 20, n = 40, k = 32;
        var rng = new Random(7 + (int)epilogue);
        var (x, _) = MmaReference.Bf16Random(rng, m * k);
        var (w, wBits) = MmaReference.Bf16Random(rng, n * k);
        var bias = MmaReference.Bf16Random(rng, n).Values;
        var gate = MmaReference.Bf16Random(rng, n, 2f).Values;
        var aux = MmaReference.Bf16Random(rng, m * n).Values;
        var v = MmaReference.Linear(x, w, bias, m, n, k);
        var expected = new double[m * n];
        for (int i = 0; i < expected.Length; i++)
        {
            double silu = v[i] / (1 + Math.Exp(-v[i]));
            expected[i] = epilogue switch
            {
                MmaEpilogue.Silu => silu,
                MmaEpilogue.SwiGlu => silu * aux[i],
                MmaEpilogue.GatedResidual => aux[i] + Math.Tanh(gate[i % n]) * v[i],
                _ => v[i],
            };
        }

        var actual = Run(m, n, k, MmaTiling.SingleWarp, null, x, wBits, bias, epilogue, gate, aux, bf16Output);

        // bf16 output adds one rounding (relative 2^-9).
        double tol = bf16Output ? 4e-3 : 1e-4;
        Assert.True(MmaReference.RelativeError(expected, actual) < tol, $"{epilogue}: relative error {MmaReference.RelativeError(expected, actual):E3}");
    }

    [Fact]
    public void AWrongFragmentLaneMappingMakesTheGemmWrong()
    {
        const int m = 20, n = 40, k = 32;
        var rng = new Random(3);
        var (x, _) = MmaReference.Bf16Random(rng, m * k);
        var (w, wBits) = MmaReference.Bf16Random(rng, n * k);
        var expected = MmaReference.Linear(x, w, null, m, n, k);

        double documented = RunWith<PtxIsaLaneLayout>(x, wBits, m, n, k, expected);
        double swappedA = RunWith<SwappedKPairLayout>(x, wBits, m, n, k, expected);
        double rotatedB = RunWith<RotatedColumnLayout>(x, wBits, m, n, k, expected);

        Assert.True(documented < Tol, $"documented layout: {documented:E3}");
        Assert.True(swappedA > 0.1, $"swapped A k-pairs still pass: {swappedA:E3}");
        Assert.True(rotatedB > 0.1, $"rotated B columns still pass: {rotatedB:E3}");
    }

    [Fact]
    public void OutOfRangeShapesAndPortableContextsAreRejectedByName()
    {
        using var w = fx.Accelerator.Allocate1D<ushort>(64);
        using var y = fx.Accelerator.Allocate1D<float>(256);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => fx.Gemm.Linear(y.View, w.View, default, y.View, 0, 8, 8));
        Assert.Contains("m = 0", ex.Message, StringComparison.Ordinal);
        var shortW = Assert.Throws<ArgumentException>(() => fx.Gemm.Linear(y.View, w.View, default, y.View, 8, 8, 16));
        Assert.Contains("w has 64 elements", shortW.Message, StringComparison.Ordinal);

        using var portable = new MmaGemmKernels(new KernelContext(fx.Accelerator, KernelVariant.Portable));
        Assert.False(portable.IsAvailable);
        Assert.Throws<InvalidOperationException>(() => portable.Linear(y.View, w.View, default, y.View, 8, 8, 8));
    }

    [Fact]
    public void EightBitWeightsAreDequantizedInRegistersAndScaledPerChannel()
    {
        const int m = 20, n = 40, k = 32;
        var rng = new Random(9);
        var (x, _) = MmaReference.Bf16Random(rng, m * k);
        var wf = MmaReference.Bf16Random(rng, n * k).Values;
        var bias = MmaReference.Bf16Random(rng, n).Values;
        var i8 = new sbyte[n * k];
        var f8 = new byte[n * k];
        var s8 = new float[n];
        var sf8 = new float[n];
        Quant8.QuantizeInt8(wf, n, k, i8, s8);
        Quant8.QuantizeFp8E4M3(wf, n, k, f8, sf8);
        var acc = fx.Accelerator;
        using var dx = acc.Allocate1D(x);
        using var di8 = acc.Allocate1D(i8);
        using var df8 = acc.Allocate1D(f8);
        using var ds8 = acc.Allocate1D(s8);
        using var dsf8 = acc.Allocate1D(sf8);
        using var db = acc.Allocate1D(bias);
        using var dy = acc.Allocate1D<float>(m * n);
        fx.Gemm.Tiling = MmaTiling.SingleWarp;

        dy.CopyFromCPU(Enumerable.Repeat(float.NaN, m * n).ToArray());
        fx.Gemm.LinearInt8(dx.View, di8.View, ds8.View, db.View, dy.View, m, n, k);
        acc.Synchronize();
        var int8Expected = MmaReference.Linear(x, [.. i8.Select((c, i) => c * s8[i / k])], bias, m, n, k);
        Assert.True(MmaReference.RelativeError(int8Expected, dy.GetAsArray1D()) < Tol);

        dy.CopyFromCPU(Enumerable.Repeat(float.NaN, m * n).ToArray());
        fx.Gemm.LinearFp8E4M3(dx.View, df8.View, dsf8.View, db.View, dy.View, m, n, k);
        acc.Synchronize();
        var fp8Expected = MmaReference.Linear(x, [.. f8.Select((c, i) => Quant8.Fp8E4M3ToFloat(c) * sf8[i / k])], bias, m, n, k);
        Assert.True(MmaReference.RelativeError(fp8Expected, dy.GetAsArray1D()) < Tol);
    }

    private double RunWith<TLayout>(float[] x, ushort[] wBits, int m, int n, int k, double[] expected)
        where TLayout : struct, IMmaLaneLayout
    {
        var kernel = fx.Accelerator.LoadKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmaGemmShape>(
            MmaGemmKernels.GemmKernel<float, F32Activation, ushort, Bf16Weight, float, F32Output, LayoutMma<TLayout>>);
        using var dx = fx.Accelerator.Allocate1D(x);
        using var dw = fx.Accelerator.Allocate1D(wBits);
        using var dy = fx.Accelerator.Allocate1D<float>(m * n);
        dy.View.MemSetToZero();
        fx.Gemm.Tiling = MmaTiling.SingleWarp;
        fx.Gemm.LaunchF32(kernel, dx.View, dw.View, default, dy.View, m, n, k);
        fx.Accelerator.Synchronize();
        return MmaReference.RelativeError(expected, dy.GetAsArray1D());
    }

    private float[] Run(int m, int n, int k, MmaTiling tiling, ushort[]? xBits, float[] x, ushort[] wBits, float[] bias, MmaEpilogue epilogue,
        float[]? gate = null, float[]? aux = null, bool bf16Output = false)
    {
        var acc = fx.Accelerator;
        using var dxf = acc.Allocate1D(x);
        using var dxb = acc.Allocate1D(xBits ?? [0]);
        using var dw = acc.Allocate1D(wBits);
        using var db = acc.Allocate1D(bias);
        using var dg = acc.Allocate1D(gate ?? [0f]);
        using var da = acc.Allocate1D(aux ?? [0f]);
        using var dy = acc.Allocate1D<float>(m * n);
        using var dyb = acc.Allocate1D<ushort>(m * n);
        dy.CopyFromCPU(Enumerable.Repeat(float.NaN, m * n).ToArray());
        dyb.CopyFromCPU(Enumerable.Repeat((ushort)0x7FC0, m * n).ToArray());
        var g = gate is null ? default : dg.View;
        var a = aux is null ? default : da.View;
        fx.Gemm.Tiling = tiling;
        if (xBits is null && !bf16Output) fx.Gemm.Linear(dxf.View, dw.View, db.View, dy.View, m, n, k, epilogue, g, a);
        else if (xBits is null) fx.Gemm.Linear(dxf.View, dw.View, db.View, dyb.View, m, n, k, epilogue, g, a);
        else if (!bf16Output) fx.Gemm.Linear(dxb.View, dw.View, db.View, dy.View, m, n, k, epilogue, g, a);
        else fx.Gemm.Linear(dxb.View, dw.View, db.View, dyb.View, m, n, k, epilogue, g, a);
        acc.Synchronize();
        return bf16Output ? [.. dyb.GetAsArray1D().Select(Bf16.ToFloat)] : dy.GetAsArray1D();
    }
}
