using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace ZImage.Kernels.Tests;

/// <summary>One ILGPU context with a default CPU accelerator (portable variant) and a GPU-shaped one (GPU variant).</summary>
public sealed class ModelKernelsFixture : IDisposable
{
    /// <summary>Creates both accelerators and loads the kernels once.</summary>
    public ModelKernelsFixture()
    {
        Context = IlgpuContexts.CreateCpu();
        Portable = Context.GetCPUDevice(0).CreateCPUAccelerator(Context, CPUAcceleratorMode.Parallel);
        GpuShaped = KernelContext.CreateGpuShapedCpuAccelerator(Context);
        PortableKernels = new ModelKernels(new KernelContext(Portable, KernelVariant.Portable));
        GpuKernels = new ModelKernels(new KernelContext(GpuShaped, KernelVariant.Gpu));
    }

    /// <summary>The ILGPU context.</summary>
    public Context Context { get; }
    /// <summary>Default CPU accelerator.</summary>
    public Accelerator Portable { get; }
    /// <summary>CPU accelerator with 256-thread groups.</summary>
    public Accelerator GpuShaped { get; }
    /// <summary>Kernels in the portable variant.</summary>
    public ModelKernels PortableKernels { get; }
    /// <summary>Kernels in the GPU variant.</summary>
    public ModelKernels GpuKernels { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        GpuShaped.Dispose();
        Portable.Dispose();
        Context.Dispose();
    }
}

public sealed class ModelKernelsTests(ModelKernelsFixture fx) : IClassFixture<ModelKernelsFixture>
{
    public static TheoryData<bool, int, int> TransposeShapes => new()
    {
        // Sizes straddle the 32×32 tile edge in both directions, plus degenerate single rows/columns.
        { false, 1, 1 }, { false, 1, 37 }, { false, 45, 1 }, { false, 64, 60 }, { false, 33, 70 },
        { true, 1, 1 }, { true, 1, 37 }, { true, 45, 1 }, { true, 32, 32 }, { true, 33, 70 },
    };

    [Theory]
    [MemberData(nameof(TransposeShapes))]
    public void Transpose2dMatchesReferenceAndLeavesTailUntouched(bool gpu, int rows, int cols)
    {
        var acc = gpu ? fx.GpuShaped : fx.Portable;
        var kernels = gpu ? fx.GpuKernels : fx.PortableKernels;
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
