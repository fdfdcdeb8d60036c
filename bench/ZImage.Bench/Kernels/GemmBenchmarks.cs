using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZImage.Kernels;

namespace ZImage.Bench.Kernels;

/// <summary>
/// Portable GEMM (<see cref="GemmKernels"/>) on the CPU accelerator against a straightforward C# loop on the same
/// shapes, y[M,N] = x[M,K]·w[N,K]ᵀ + b. Shape strings are "MxNxK".
/// Run: <c>dotnet run -c Release --project bench/ZImage.Bench -- --filter '*Gemm*' --job short</c>.
/// </summary>
[Config(typeof(FlopsConfig))]
public class GemmBenchmarks : CpuKernelBenchmark
{
    private GemmKernels? _gemm;
    private MemoryBuffer1D<float, Stride1D.Dense>? _x, _w, _b, _y;
    private MemoryBuffer1D<ushort, Stride1D.Dense>? _wBf16;
    private float[] _hx = [], _hw = [], _hb = [], _hy = [];
    private int _m, _n, _k;

    /// <summary>Problem size "MxNxK".</summary>
    [Params("256x256x256", "1024x512x512")]
    public string Shape { get; set; } = "256x256x256";

    /// <summary>Floating-point operations of one call for <paramref name="shape"/>.</summary>
    public static double Flops(string shape)
    {
        int[] d = Dims(shape);
        return 2.0 * d[0] * d[1] * d[2];
    }

    /// <summary>Creates the accelerator, compiles the kernels and uploads random operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        int[] d = Dims(Shape);
        (_m, _n, _k) = (d[0], d[1], d[2]);
        var rng = new Random(1);
        _hx = Enumerable.Range(0, _m * _k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _hw = Enumerable.Range(0, _n * _k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _hb = Enumerable.Range(0, _n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _hy = new float[_m * _n];
        _gemm = new GemmKernels(StartAccelerator());
        _x = Accelerator.Allocate1D(_hx);
        _w = Accelerator.Allocate1D(_hw);
        _wBf16 = Accelerator.Allocate1D(_hw.Select(Bf16.FromFloat).ToArray());
        _b = Accelerator.Allocate1D(_hb);
        _y = Accelerator.Allocate1D<float>(_m * _n);
    }

    /// <summary>Releases the buffers and the accelerator.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _x?.Dispose(); _w?.Dispose(); _wBf16?.Dispose(); _b?.Dispose(); _y?.Dispose();
        StopAccelerator();
    }

    /// <summary>The reference point: a plain single-threaded C# loop with both rows contiguous.</summary>
    [Benchmark(Baseline = true)]
    public float PlainCSharp()
    {
        float[] x = _hx, w = _hw, b = _hb, y = _hy;
        int n = _n, k = _k;
        for (int i = 0; i < _m; i++)
        for (int j = 0; j < n; j++)
        {
            float s = b[j];
            for (int t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
            y[i * n + j] = s;
        }
        return y[0];
    }

    /// <summary>Portable kernel, float32 weights, including launch and synchronisation.</summary>
    [Benchmark]
    public void PortableF32()
    {
        _gemm!.Linear(_x!.View, _w!.View, _b!.View, _y!.View, _m, _n, _k);
        Accelerator.Synchronize();
    }

    /// <summary>Portable kernel, bfloat16 weights.</summary>
    [Benchmark]
    public void PortableBf16()
    {
        _gemm!.Linear(_x!.View, _wBf16!.View, _b!.View, _y!.View, _m, _n, _k);
        Accelerator.Synchronize();
    }
}

/// <summary>Adds a GFLOP/s column to the kernel benchmarks (FLOPs from the <c>Shape</c> parameter and the class's static <c>Flops(string)</c>).</summary>
public sealed class FlopsConfig : ManualConfig
{
    /// <summary>Registers the column.</summary>
    public FlopsConfig() => AddColumn(new GflopsColumn());
}

/// <summary>GFLOP/s = FLOPs of the case's shape / mean time.</summary>
public sealed class GflopsColumn : IColumn
{
    /// <inheritdoc />
    public string Id => "GFLOPs";
    /// <inheritdoc />
    public string ColumnName => "GFLOP/s";
    /// <inheritdoc />
    public bool AlwaysShow => true;
    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;
    /// <inheritdoc />
    public int PriorityInCategory => 0;
    /// <inheritdoc />
    public bool IsNumeric => true;
    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;
    /// <inheritdoc />
    public string Legend => "Floating-point operations per second of the case's shape (2·M·N·K for GEMM, 4·S²·H·Dh for attention, 18·C²·H² for conv 3×3)";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } stats) return "NA";
        string shape = (string)benchmarkCase.Parameters["Shape"];
        // Each benchmark class with this column declares "public static double Flops(string shape)".
        var flopsOf = benchmarkCase.Descriptor.Type.GetMethod("Flops", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static, [typeof(string)]);
        if (flopsOf is null) return "NA";
        double flops = (double)flopsOf.Invoke(null, [shape])!;
        return (flops / stats.Mean).ToString("F2", System.Globalization.CultureInfo.InvariantCulture); // ns → GFLOP/s
    }

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;
    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
