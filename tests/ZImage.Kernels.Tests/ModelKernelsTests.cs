using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests;

/// <summary>The model kernels of every available backend (<see cref="KernelBackends"/>), compiled once per backend.</summary>
public sealed class ModelKernelsFixture : IDisposable
{
    private readonly BackendAccelerators _backends = new();
    private readonly PerBackend<ModelKernels> _kernels;

    /// <summary>Creates the CPU accelerators; the kernels compile on first use.</summary>
    public ModelKernelsFixture()
    {
        _kernels = new(_backends, k => new ModelKernels(k));
    }

    /// <summary>Default CPU accelerator.</summary>
    public Accelerator Portable => _backends.For(KernelBackend.CpuPortable).Accelerator;
    /// <summary>Kernels in the portable variant.</summary>
    public ModelKernels PortableKernels => _kernels[KernelBackend.CpuPortable];
    /// <summary>Kernels of a backend.</summary>
    public ModelKernels Kernels(KernelBackend backend) => _kernels[backend];
    /// <summary>The accelerator of a backend.</summary>
    public Accelerator AcceleratorOf(KernelBackend backend) => _backends.For(backend).Accelerator;

    /// <inheritdoc />
    public void Dispose()
    {
        _kernels.Dispose();
        _backends.Dispose();
    }
}

public sealed class ModelKernelsTests(ModelKernelsFixture fx) : IClassFixture<ModelKernelsFixture>
{
    // Sizes straddle the 32×32 tile edge in both directions, plus degenerate single rows/columns.
    public static TheoryData<KernelBackend, int, int> TransposeShapes => KernelBackends.Matrix(
        new TheoryData<int, int> { { 1, 1 }, { 1, 37 }, { 45, 1 }, { 64, 60 }, { 33, 70 } },
        new TheoryData<int, int> { { 1, 1 }, { 1, 37 }, { 45, 1 }, { 32, 32 }, { 33, 70 } });

    [Theory]
    [MemberData(nameof(TransposeShapes))]
    public void Transpose2dMatchesReferenceAndLeavesTailUntouched(KernelBackend backend, int rows, int cols)
    {
        var kernels = fx.Kernels(backend);
        var acc = fx.AcceleratorOf(backend);
        var rng = new Random(rows * 1000 + cols);
        int n = rows * cols;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        // Poisoned output with a guard tail: every element must be written and nothing past the end.
        float[] poison = Enumerable.Repeat(float.NaN, n + 7).ToArray();
        using var xb = acc.Allocate1D(x);
        using var yb = acc.Allocate1D(poison);

        kernels.Transpose2d(xb.View, yb.View, rows, cols);
        acc.Synchronize();
        float[] y = yb.GetAsArray1D();

        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++)
                Assert.Equal((double)x[r * cols + c], (double)y[c * rows + r]);
        for (int i = n; i < n + 7; i++) Assert.True(float.IsNaN(y[i]), $"Element {i} past the end was written.");
    }

    [Fact]
    public void Transpose2dRejectsShortViews()
    {
        using var xb = fx.Portable.Allocate1D<float>(10);
        using var yb = fx.Portable.Allocate1D<float>(12);
        Assert.Throws<ArgumentException>(() => fx.PortableKernels.Transpose2d(xb.View, yb.View, 3, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => fx.PortableKernels.Transpose2d(yb.View, yb.View, 0, 4));
    }
}
