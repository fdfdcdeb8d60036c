using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>
/// Shared plumbing of the <see cref="KernelComputeOps"/> conformance tests: a per-test allocator, a seeded random
/// source, the float64 <see cref="HostReferenceOps"/>, tensors that are freed with the test, and a max-abs comparison.
/// </summary>
public abstract class OpsConformanceTestBase : IDisposable
{
    /// <summary>Default max |kernel − reference|.</summary>
    protected const double Tol = 2e-5;

    private readonly List<Tensor> _owned = [];
    private readonly Random _rng;

    /// <summary>Creates the allocator on <paramref name="fx"/> and a random source seeded with <paramref name="seed"/>.</summary>
    protected OpsConformanceTestBase(ComputeFixture fx, int seed)
    {
        Fx = fx;
        Alloc = fx.CreateAllocator();
        _rng = new Random(seed);
    }

    /// <summary>The shared compute fixture (ops under test).</summary>
    protected ComputeFixture Fx { get; }

    /// <summary>This test's allocator.</summary>
    protected CachingAllocator Alloc { get; }

    /// <summary>The float64 reference.</summary>
    private protected HostReferenceOps Ref { get; } = new();

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        Alloc.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary><paramref name="n"/> uniform values in ±<paramref name="scale"/>.</summary>
    protected float[] Rand(int n, float scale = 1f) => Enumerable.Range(0, n).Select(_ => (float)(_rng.NextDouble() * 2 - 1) * scale).ToArray();

    /// <summary>Frees <paramref name="t"/> with the test.</summary>
    protected Tensor Track(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    /// <summary>An F32 tensor holding <paramref name="data"/>.</summary>
    protected Tensor F32(float[] data, params int[] shape) => Track(Fx.Upload(Alloc, data, shape));

    /// <summary>An uninitialised F32 tensor.</summary>
    protected Tensor Empty(params int[] shape) => Empty(TensorDType.F32, shape);

    /// <summary>An uninitialised tensor.</summary>
    protected Tensor Empty(TensorDType dtype, params int[] shape)
    {
        long n = shape.Aggregate(1L, (a, d) => a * d);
        return Track(new Tensor(Alloc.Allocate(Math.Max(1, n) * Tensor.ElementSize(dtype), "test"), dtype, shape));
    }

    /// <summary>An F32 output pre-filled with NaN, so an element the kernel fails to write shows up.</summary>
    protected Tensor Poisoned(params int[] shape)
    {
        var t = Empty(shape);
        Fx.Ops.Upload(Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray(), t);
        return t;
    }

    /// <summary>A copy of <paramref name="src"/>.</summary>
    protected Tensor Clone(Tensor src)
    {
        var t = Empty(src.DType, src.Shape);
        Fx.Ops.Copy(src, t);
        return t;
    }

    /// <summary>A weight tensor of <paramref name="dtype"/> holding <paramref name="values"/> (rounded to the dtype).</summary>
    protected Tensor Matrix(TensorDType dtype, float[] values, params int[] shape)
    {
        var w = Empty(dtype, shape);
        switch (dtype)
        {
            case TensorDType.F32: Fx.Ops.Upload(values, w); break;
            case TensorDType.BF16:
                ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(w.BF16, values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray());
                break;
            default:
                ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(w.F16, values.Select(v => (ILGPU.Half)v).ToArray());
                break;
        }
        return w;
    }

    /// <summary>Asserts max |expected − actual| ≤ <paramref name="tol"/>; a NaN anywhere fails.</summary>
    protected static void Close(float[] expected, float[] actual, double tol = Tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            max = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(max, d);
        }
        Assert.True(max <= tol, $"max |diff| {max:g3} > {tol:g3}");
    }
}
