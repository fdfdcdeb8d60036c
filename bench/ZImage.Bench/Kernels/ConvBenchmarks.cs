using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZImage.Kernels;

namespace ZImage.Bench.Kernels;

/// <summary>
/// Conv 3×3 (pad 1, bias, fp32 weights) through the portable kernel on the CPU accelerator versus a straightforward
/// C# loop (the baseline) in the same run. GFLOP/s = 2·Cout·Cin·9·H·W / time; the shape string in the parameter
/// column gives Cin→Cout@H×W. Run: dotnet run -c Release --project bench/ZImage.Bench -- --filter '*Conv*' --job short
/// </summary>
[MemoryDiagnoser(false)]
[Config(typeof(FlopsConfig))]
public class ConvBenchmarks : CpuKernelBenchmark
{
    private ConvKernels _conv = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> _x = null!, _w = null!, _b = null!, _y = null!;
    private float[] _hx = [], _hw = [], _hb = [], _hy = [];
    private int _c, _h;

    /// <summary>Channels→channels @ size×size.</summary>
    [Params("32x16", "64x64")]
    public string Shape { get; set; } = "32x16";

    /// <summary>Floating-point operations of one call for <paramref name="shape"/> ("CxH": C→C channels at H×H).</summary>
    public static double Flops(string shape)
    {
        int[] d = Dims(shape);
        return 2.0 * d[0] * d[0] * 9 * d[1] * d[1];
    }

    /// <summary>Allocates inputs and compiles the kernels.</summary>
    [GlobalSetup]
    public void Setup()
    {
        int[] d = Dims(Shape);
        (_c, _h) = (d[0], d[1]);
        var rng = new Random(1);
        _hx = Enumerable.Range(0, _c * _h * _h).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _hw = Enumerable.Range(0, _c * _c * 9).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _hb = Enumerable.Range(0, _c).Select(_ => (float)rng.NextDouble()).ToArray();
        _hy = new float[_c * _h * _h];
        _conv = new ConvKernels(StartAccelerator());
        _x = Accelerator.Allocate1D(_hx);
        _w = Accelerator.Allocate1D(_hw);
        _b = Accelerator.Allocate1D(_hb);
        _y = Accelerator.Allocate1D<float>(_hy.Length);
        PortableKernel();
        Console.WriteLine($"// {Shape}: {Flops(Shape) / 1e9:F4} GFLOP per call");
    }

    /// <summary>Frees buffers and the accelerator.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _x.Dispose();
        _w.Dispose();
        _b.Dispose();
        _y.Dispose();
        StopAccelerator();
    }

    /// <summary>Straightforward C# loop: one output at a time, nine taps per input channel, bounds checks inline.</summary>
    [Benchmark(Baseline = true)]
    public void PlainLoop()
    {
        int c = _c, h = _h, w = _h;
        for (int co = 0; co < c; co++)
        {
            for (int oy = 0; oy < h; oy++)
            {
                for (int ox = 0; ox < w; ox++)
                {
                    float s = _hb[co];
                    for (int ci = 0; ci < c; ci++)
                    {
                        for (int ky = 0; ky < 3; ky++)
                        {
                            int iy = oy + ky - 1;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < 3; kx++)
                            {
                                int ix = ox + kx - 1;
                                if (ix < 0 || ix >= w) continue;
                                s += _hw[((co * c + ci) * 3 + ky) * 3 + kx] * _hx[(ci * h + iy) * w + ix];
                            }
                        }
                    }

                    _hy[(co * h + oy) * w + ox] = s;
                }
            }
        }
    }

    /// <summary>The portable ILGPU kernel on the CPU accelerator (includes launch and synchronisation).</summary>
    [Benchmark]
    public void PortableKernel()
    {
        _conv.Conv2d(_x.View, _w.View, _b.View, _y.View, _c, _c, _h, _h, 3);
        Accelerator.Synchronize();
    }
}
