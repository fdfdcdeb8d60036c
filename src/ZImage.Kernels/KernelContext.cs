using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace ZImage.Kernels;

/// <summary>Which implementation of a heavy op to run.</summary>
public enum KernelVariant
{
    /// <summary>Pick by accelerator: <see cref="Gpu"/> on CUDA/OpenCL, <see cref="Portable"/> on the CPU accelerator.</summary>
    Auto,
    /// <summary>Explicitly grouped kernels with shared-memory tiles: fast on a GPU, ~1000× slower on the CPU simulator.</summary>
    Gpu,
    /// <summary>Implicitly grouped kernels with few threads that each loop over a chunk: plain-C# speed on the CPU accelerator.</summary>
    Portable,
}

/// <summary>
/// The accelerator plus the resolved variant that every kernel family (<c>GemmKernels</c>, <c>AttentionKernels</c>, ...)
/// is loaded against. Kernel families load (JIT-compile) their kernels in their constructors so that a warm-up
/// creates them once and no generation pays a compile spike.
/// </summary>
public sealed class KernelContext
{
    /// <summary>Creates a context for <paramref name="accelerator"/>.</summary>
    /// <param name="accelerator">Where kernels run.</param>
    /// <param name="variant">Forced variant, or <see cref="KernelVariant.Auto"/>.</param>
    public KernelContext(Accelerator accelerator, KernelVariant variant = KernelVariant.Auto)
    {
        Accelerator = accelerator ?? throw new ArgumentNullException(nameof(accelerator));
        bool isCpu = accelerator.AcceleratorType == AcceleratorType.CPU;
        Variant = variant == KernelVariant.Auto ? (isCpu ? KernelVariant.Portable : KernelVariant.Gpu) : variant;
        // Portable kernels split work into this many coarse chunks: enough to fill the simulator's threads
        // (and a GPU's SMs when forced there), few enough that per-thread overhead stays negligible.
        PortableChunks = isCpu ? Math.Max(1, Environment.ProcessorCount) * 2 : accelerator.NumMultiprocessors * 32;
        _tensorCores = Variant == KernelVariant.Gpu && accelerator is CudaAccelerator cuda && cuda.Architecture >= new CudaArchitecture(8, 0);
    }

    private readonly bool _tensorCores;

    /// <summary>
    /// Whether the tensor-core (<c>mma.sync</c>) kernels of <c>ZImage.Kernels.Mma</c> replace the SIMT GPU kernels where
    /// they apply (bf16-weight GEMMs, attention with head dim 16/32/128). Defaults to true for the GPU variant on CUDA
    /// devices of compute capability 8.0 and newer (Ampere, Ada, Hopper) and false everywhere else. Setting it true on
    /// another GPU-variant context with 32-lane warps runs the same kernels, e.g. through the fragment emulator on a
    /// GPU-shaped CPU accelerator; false keeps the SIMT kernels.
    /// </summary>
    /// <exception cref="ArgumentException">Set to true on a portable context or one without 32-lane warps.</exception>
    public bool TensorCores
    {
        get => _tensorCores;
        init
        {
            if (value && (Variant != KernelVariant.Gpu || Accelerator.WarpSize != 32))
                throw new ArgumentException($"TensorCores needs the GPU variant with 32-lane warps; this context is {Variant} with warp {Accelerator.WarpSize}.", nameof(TensorCores));
            _tensorCores = value;
        }
    }

    /// <summary>The accelerator kernels are loaded on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The resolved variant (never <see cref="KernelVariant.Auto"/>).</summary>
    public KernelVariant Variant { get; }

    /// <summary>How many coarse work items a portable kernel launches.</summary>
    public int PortableChunks { get; }

    /// <summary>The default stream.</summary>
    public AcceleratorStream Stream => Accelerator.DefaultStream;

    /// <summary>
    /// A CPU accelerator whose groups are GPU-sized (256 threads, warp 32), so that <see cref="KernelVariant.Gpu"/>
    /// kernels can be tested without a GPU. The default CPU device allows only 16 threads per group.
    /// </summary>
    public static CPUAccelerator CreateGpuShapedCpuAccelerator(Context context) =>
        new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 2)
            .CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel);
}
