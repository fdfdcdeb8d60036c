using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ZImage.Kernels;
using ZImage.Kernels.Mma;

namespace ZImage.Bench.Kernels;

/// <summary>
/// The tensor-core kernels (<see cref="MmaGemmKernels"/>, <see cref="MmaAttentionKernels"/>). On a CUDA device
/// (sm_80+) they run at the real Z-Image shapes: GEMM 4128×3840→3840 and →10240 with bf16 weights, attention S=4128,
/// 30 heads, head dim 128; compare the GFLOP/s column with the card's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s,
/// A100: 312, RTX 4090: 165) and with <c>torch.matmul</c> / <c>scaled_dot_product_attention</c> on the same machine.
/// Without CUDA they run through the fragment emulator on a GPU-shaped CPU accelerator at tiny shapes: those
/// figures measure the simulator, not the kernels (correctness-only; the MmaEmulation tests are the check).
/// Run: <c>dotnet run -c Release --project bench/ZImage.Bench -- --filter '*Mma*' --job short</c>.
/// </summary>
[Config(typeof(FlopsConfig))]
public class MmaBenchmarks
{
    private Context? _context;
    private Accelerator? _accelerator;
    private MmaGemmKernels? _gemm;
    private MmaAttentionKernels? _attention;
    private MemoryBuffer1D<float, Stride1D.Dense>? _x, _y;
    private MemoryBuffer1D<ushort, Stride1D.Dense>? _w;
    private int[] _d = [];

    /// <summary>Whether ILGPU finds a CUDA device here.</summary>
    public static bool HasCuda
    {
        get
        {
            using var ctx = IlgpuContexts.CreateCudaAndCpu();
            return ctx.GetCudaDevices().Count > 0;
        }
    }

    /// <summary>"gemm:MxKxN" or "attn:SxHxDh": the real shapes on CUDA, tiny ones on the CPU emulator.</summary>
    public static IEnumerable<string> Shapes() => HasCuda
        ? ["gemm:4128x3840x3840", "gemm:4128x3840x10240", "attn:4128x30x128"]
        : ["gemm:64x64x128", "attn:32x1x128"];

    /// <summary>The case.</summary>
    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "gemm:64x64x128";

    /// <summary>FLOPs of one call: 2·M·N·K, or 4·S²·H·Dh.</summary>
    public static double Flops(string shape)
    {
        int[] d = shape[5..].Split('x').Select(int.Parse).ToArray();
        return shape.StartsWith("gemm", StringComparison.Ordinal) ? 2.0 * d[0] * d[1] * d[2] : 4.0 * d[0] * d[0] * d[1] * d[2];
    }

    /// <summary>Picks CUDA or the GPU-shaped CPU accelerator, compiles and uploads random operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _context = IlgpuContexts.CreateCudaAndCpu();
        var cuda = _context.GetCudaDevices();
        _accelerator = cuda.Count > 0 ? cuda[0].CreateAccelerator(_context) : KernelContext.CreateGpuShapedCpuAccelerator(_context);
        var kc = new KernelContext(_accelerator, KernelVariant.Gpu);
        _d = Shape[5..].Split('x').Select(int.Parse).ToArray();
        var rng = new Random(4);
        if (Shape.StartsWith("gemm", StringComparison.Ordinal))
        {
            _gemm = new MmaGemmKernels(kc);
            int m = _d[0], k = _d[1], n = _d[2];
            _x = _accelerator.Allocate1D(Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
            _w = _accelerator.Allocate1D(Enumerable.Range(0, n * k).Select(_ => Bf16.FromFloat((float)rng.NextDouble() - 0.5f)).ToArray());
            _y = _accelerator.Allocate1D<float>((long)m * n);
        }
        else
        {
            _attention = new MmaAttentionKernels(kc);
            int len = _d[0] * _d[1] * _d[2];
            _x = _accelerator.Allocate1D(Enumerable.Range(0, len).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
            _y = _accelerator.Allocate1D<float>(len);
        }
    }

    /// <summary>Releases everything.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _x?.Dispose(); _y?.Dispose(); _w?.Dispose();
        _gemm?.Dispose();
        _accelerator?.Dispose();
        _context?.Dispose();
    }

    /// <summary>One launch (GEMM with fp32 activations and output, or self-attention), synchronised.</summary>
    [Benchmark]
    public void TensorCores()
    {
        if (_gemm is not null) _gemm.Linear(_x!.View, _w!.View, default, _y!.View, _d[0], _d[2], _d[1]);
        else _attention!.Forward(_x!.View, _x.View, _x.View, _y!.View, _d[0], _d[0], _d[1], _d[1], _d[2], 1f / MathF.Sqrt(_d[2]), causal: false);
        _accelerator!.Synchronize();
    }
}
