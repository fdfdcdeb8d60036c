using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZImage.Kernels;

namespace ZImage.Bench.Kernels;

/// <summary>
/// Portable attention (<see cref="AttentionKernels"/>, non-causal self-attention) on the CPU accelerator against a
/// straightforward C# loop (scores row, softmax, weighted sum). Shape strings are "SxHxDh".
/// Run: <c>dotnet run -c Release --project bench/ZImage.Bench -- --filter '*Attention*' --job short</c>.
/// </summary>
[Config(typeof(FlopsConfig))]
public class AttentionBenchmarks : CpuKernelBenchmark
{
    private AttentionKernels? _attention;
    private MemoryBuffer1D<float, Stride1D.Dense>? _q, _k, _v, _o;
    private float[] _hq = [], _hk = [], _hv = [], _ho = [], _scores = [];
    private int _s, _h, _dh;

    /// <summary>Problem size "SxHxDh".</summary>
    [Params("256x2x32", "1024x4x64")]
    public string Shape { get; set; } = "256x2x32";

    /// <summary>Floating-point operations of one call (q·kᵀ and p·v, 2 FLOPs per multiply-add each).</summary>
    public static double Flops(string shape)
    {
        int[] d = Dims(shape);
        return 4.0 * d[0] * d[0] * d[1] * d[2];
    }

    /// <summary>Creates the accelerator, compiles the kernels and uploads random operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        int[] d = Dims(Shape);
        (_s, _h, _dh) = (d[0], d[1], d[2]);
        var rng = new Random(2);
        int len = _s * _h * _dh;
        _hq = Enumerable.Range(0, len).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        _hk = Enumerable.Range(0, len).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        _hv = Enumerable.Range(0, len).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        _ho = new float[len];
        _scores = new float[_s];
        _attention = new AttentionKernels(StartAccelerator());
        _q = Accelerator.Allocate1D(_hq);
        _k = Accelerator.Allocate1D(_hk);
        _v = Accelerator.Allocate1D(_hv);
        _o = Accelerator.Allocate1D<float>(len);
    }

    /// <summary>Releases the buffers and the accelerator.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _q?.Dispose(); _k?.Dispose(); _v?.Dispose(); _o?.Dispose();
        StopAccelerator();
    }

    /// <summary>The reference point: plain single-threaded C# (materialised score row per query and head).</summary>
    [Benchmark(Baseline = true)]
    public float PlainCSharp()
    {
        int s = _s, h = _h, dh = _dh;
        float scale = 1f / MathF.Sqrt(dh);
        float[] q = _hq, k = _hk, v = _hv, o = _ho, p = _scores;
        for (int i = 0; i < s; i++)
        for (int hh = 0; hh < h; hh++)
        {
            int qo = (i * h + hh) * dh;
            float max = float.NegativeInfinity;
            for (int j = 0; j < s; j++)
            {
                int ko = (j * h + hh) * dh;
                float dot = 0;
                for (int d = 0; d < dh; d++) dot += q[qo + d] * k[ko + d];
                p[j] = dot * scale;
                max = MathF.Max(max, p[j]);
            }
            float sum = 0;
            for (int j = 0; j < s; j++) sum += p[j] = MathF.Exp(p[j] - max);
            for (int d = 0; d < dh; d++) o[qo + d] = 0;
            for (int j = 0; j < s; j++)
            {
                int vo = (j * h + hh) * dh;
                float w = p[j] / sum;
                for (int d = 0; d < dh; d++) o[qo + d] += w * v[vo + d];
            }
        }
        return o[0];
    }

    /// <summary>Portable kernel including launch and synchronisation.</summary>
    [Benchmark]
    public void Portable()
    {
        _attention!.Forward(_q!.View, _k!.View, _v!.View, _o!.View, _s, _s, _h, _h, _dh, 1f / MathF.Sqrt(_dh), causal: false);
        Accelerator.Synchronize();
    }
}
