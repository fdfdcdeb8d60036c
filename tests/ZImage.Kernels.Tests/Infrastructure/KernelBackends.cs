using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>An accelerator plus kernel variant that a correctness theory runs on.</summary>
public enum KernelBackend
{
    /// <summary>The default CPU accelerator (16 threads per group) with the portable variant.</summary>
    CpuPortable,

    /// <summary>A GPU-shaped CPU accelerator (256-thread groups, warp 32) with the GPU variant forced; tiny sizes only.</summary>
    CpuGpuShaped,

    /// <summary>A CUDA accelerator with the GPU variant; generated only where ILGPU finds a CUDA device.</summary>
    Cuda,
}

/// <summary>
/// The backend matrix of the kernel tests: one suite, run on every backend this machine has. The two CPU backends
/// always exist; <see cref="KernelBackend.Cuda"/> rows are generated only when ILGPU finds a CUDA device, so a
/// GPU-less machine neither runs nor skips them.
/// </summary>
public static class KernelBackends
{
    private static readonly Lazy<bool> s_hasCuda = new(DetectCuda);

    /// <summary>Whether ILGPU sees a CUDA device here (probed once per test run).</summary>
    public static bool HasCuda => s_hasCuda.Value;

    private static readonly AsyncLocal<bool?> s_rowsForCuda = new();

    /// <summary>The backends available here, CPU ones first.</summary>
    public static IReadOnlyList<KernelBackend> Available => BackendsFor(HasCuda);

    // Whether the data sources generate CUDA rows: where ILGPU finds a device, or inside PretendCudaForRows.
    private static bool RowsForCuda => s_rowsForCuda.Value ?? HasCuda;

    private static IReadOnlyList<KernelBackend> BackendsFor(bool cuda) =>
        cuda ? [KernelBackend.CpuPortable, KernelBackend.CpuGpuShaped, KernelBackend.Cuda] : [KernelBackend.CpuPortable, KernelBackend.CpuGpuShaped];

    /// <summary>
    /// Makes the data sources on this async flow generate the rows a CUDA machine gets (nothing runs on CUDA), so
    /// <c>BackendCoverageTests</c> can check on any machine that every conformance theory would get its CUDA rows.
    /// </summary>
    public static IDisposable PretendCudaForRows()
    {
        s_rowsForCuda.Value = true;
        return new ResetRows();
    }

    /// <summary>One row per available backend, for theories whose only parameter is the backend.</summary>
    public static TheoryData<KernelBackend> All()
    {
        var data = new TheoryData<KernelBackend>();
        foreach (var backend in BackendsFor(RowsForCuda))
            data.Add(backend);
        return data;
    }

    /// <summary>
    /// Prefixes each case with its backend: <paramref name="portable"/> cases run on <see cref="KernelBackend.CpuPortable"/>,
    /// <paramref name="simulatedGpu"/> cases (tiny, since the simulator pays per thread and barrier) on
    /// <see cref="KernelBackend.CpuGpuShaped"/>, and where CUDA is present every distinct case of both on
    /// <see cref="KernelBackend.Cuda"/>.
    /// </summary>
    public static TheoryData<KernelBackend, T1, T2> Matrix<T1, T2>(TheoryData<T1, T2> portable, TheoryData<T1, T2> simulatedGpu) =>
        Build(portable, simulatedGpu, new TheoryData<KernelBackend, T1, T2>(), (d, b, r) => d.Add(b, (T1)r[0]!, (T2)r[1]!));

    /// <inheritdoc cref="Matrix{T1, T2}(TheoryData{T1, T2}, TheoryData{T1, T2})" />
    public static TheoryData<KernelBackend, T1> Matrix<T1>(TheoryData<T1> portable, TheoryData<T1> simulatedGpu) =>
        Build(portable, simulatedGpu, new TheoryData<KernelBackend, T1>(), (d, b, r) => d.Add(b, (T1)r[0]!));

    /// <inheritdoc cref="Matrix{T1, T2}(TheoryData{T1, T2}, TheoryData{T1, T2})" />
    public static TheoryData<KernelBackend, T1, T2, T3> Matrix<T1, T2, T3>(TheoryData<T1, T2, T3> portable, TheoryData<T1, T2, T3> simulatedGpu) =>
        Build(portable, simulatedGpu, new TheoryData<KernelBackend, T1, T2, T3>(), (d, b, r) => d.Add(b, (T1)r[0]!, (T2)r[1]!, (T3)r[2]!));

    /// <inheritdoc cref="Matrix{T1, T2}(TheoryData{T1, T2}, TheoryData{T1, T2})" />
    public static TheoryData<KernelBackend, T1, T2, T3, T4> Matrix<T1, T2, T3, T4>(TheoryData<T1, T2, T3, T4> portable, TheoryData<T1, T2, T3, T4> simulatedGpu) =>
        Build(portable, simulatedGpu, new TheoryData<KernelBackend, T1, T2, T3, T4>(), (d, b, r) => d.Add(b, (T1)r[0]!, (T2)r[1]!, (T3)r[2]!, (T4)r[3]!));

    /// <inheritdoc cref="Matrix{T1, T2}(TheoryData{T1, T2}, TheoryData{T1, T2})" />
    public static TheoryData<KernelBackend, T1, T2, T3, T4, T5> Matrix<T1, T2, T3, T4, T5>(TheoryData<T1, T2, T3, T4, T5> portable, TheoryData<T1, T2, T3, T4, T5> simulatedGpu) =>
        Build(portable, simulatedGpu, new TheoryData<KernelBackend, T1, T2, T3, T4, T5>(), (d, b, r) => d.Add(b, (T1)r[0]!, (T2)r[1]!, (T3)r[2]!, (T4)r[3]!, (T5)r[4]!));

    /// <inheritdoc cref="Matrix{T1, T2}(TheoryData{T1, T2}, TheoryData{T1, T2})" />
    public static TheoryData<KernelBackend, T1, T2, T3, T4, T5, T6> Matrix<T1, T2, T3, T4, T5, T6>(TheoryData<T1, T2, T3, T4, T5, T6> portable, TheoryData<T1, T2, T3, T4, T5, T6> simulatedGpu) =>
        Build(portable, simulatedGpu, new TheoryData<KernelBackend, T1, T2, T3, T4, T5, T6>(), (d, b, r) => d.Add(b, (T1)r[0]!, (T2)r[1]!, (T3)r[2]!, (T4)r[3]!, (T5)r[4]!, (T6)r[5]!));

    /// <inheritdoc cref="Matrix{T1, T2}(TheoryData{T1, T2}, TheoryData{T1, T2})" />
    public static TheoryData<KernelBackend, T1, T2, T3, T4, T5, T6, T7> Matrix<T1, T2, T3, T4, T5, T6, T7>(TheoryData<T1, T2, T3, T4, T5, T6, T7> portable, TheoryData<T1, T2, T3, T4, T5, T6, T7> simulatedGpu) =>
        Build(portable, simulatedGpu, new TheoryData<KernelBackend, T1, T2, T3, T4, T5, T6, T7>(), (d, b, r) => d.Add(b, (T1)r[0]!, (T2)r[1]!, (T3)r[2]!, (T4)r[3]!, (T5)r[4]!, (T6)r[5]!, (T7)r[6]!));

    private static TData Build<TData>(IEnumerable<object?[]> portable, IEnumerable<object?[]> simulatedGpu, TData data, Action<TData, KernelBackend, object?[]> add)
    {
        var portableRows = portable.ToList();
        var gpuRows = simulatedGpu.ToList();
        foreach (var row in portableRows)
            add(data, KernelBackend.CpuPortable, row);
        foreach (var row in gpuRows)
            add(data, KernelBackend.CpuGpuShaped, row);
        if (RowsForCuda)
        {
            // CUDA is fast: it runs the portable cases too, each distinct case once.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var row in portableRows.Concat(gpuRows))
            {
                if (seen.Add(string.Join('|', row)))
                    add(data, KernelBackend.Cuda, row);
            }
        }

        return data;
    }

    /// <summary>The kernel variant a backend runs.</summary>
    public static KernelVariant VariantOf(KernelBackend backend) =>
        backend == KernelBackend.CpuPortable ? KernelVariant.Portable : KernelVariant.Gpu;

    /// <summary>A context registering the CPU backend, plus every other backend where CUDA is present.</summary>
    public static Context CreateContext() => HasCuda ? IlgpuContexts.CreateAllBackends() : IlgpuContexts.CreateCpu();

    /// <summary>Creates the accelerator of <paramref name="backend"/> in <paramref name="context"/> (from <see cref="CreateContext"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The backend is not available here.</exception>
    public static Accelerator CreateAccelerator(Context context, KernelBackend backend)
    {
        ArgumentNullException.ThrowIfNull(context);
        return backend switch
        {
            KernelBackend.CpuPortable => context.GetCPUDevice(0).CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel),
            KernelBackend.CpuGpuShaped => KernelContext.CreateGpuShapedCpuAccelerator(context),
            KernelBackend.Cuda when HasCuda => CudaDevices(context).First().CreateAccelerator(context),
            _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, $"Backend must be one of: {string.Join(", ", Available)}."),
        };
    }

    private sealed class ResetRows : IDisposable
    {
        public void Dispose() => s_rowsForCuda.Value = null;
    }

    private static IEnumerable<Device> CudaDevices(Context context) =>
        context.Devices.Where(d => d.AcceleratorType == AcceleratorType.Cuda);

    private static bool DetectCuda()
    {
        using var context = IlgpuContexts.CreateAllBackends();
        return CudaDevices(context).Any();
    }
}

/// <summary>
/// The accelerators and kernel contexts of every available backend in one context. The CPU accelerators are created
/// at once (the tests always use them); the CUDA one on first use.
/// </summary>
public sealed class BackendAccelerators : IDisposable
{
    private readonly Lazy<KernelContext>[] _contexts;

    /// <summary>Creates the context and the CPU accelerators.</summary>
    public BackendAccelerators()
    {
        Context = KernelBackends.CreateContext();
        _contexts = new Lazy<KernelContext>[Enum.GetValues<KernelBackend>().Length];
        foreach (var backend in Enum.GetValues<KernelBackend>())
        {
            _contexts[(int)backend] = new(() => new KernelContext(KernelBackends.CreateAccelerator(Context, backend), KernelBackends.VariantOf(backend)));
        }

        _ = For(KernelBackend.CpuPortable);
        _ = For(KernelBackend.CpuGpuShaped);
    }

    /// <summary>The ILGPU context.</summary>
    public Context Context { get; }

    /// <summary>The kernel context (accelerator and forced variant) of <paramref name="backend"/>.</summary>
    public KernelContext For(KernelBackend backend) => _contexts[(int)backend].Value;

    /// <inheritdoc />
    public void Dispose()
    {
        for (int i = _contexts.Length - 1; i >= 0; i--)
        {
            if (_contexts[i].IsValueCreated)
                _contexts[i].Value.Accelerator.Dispose();
        }

        Context.Dispose();
    }
}

/// <summary>
/// Marks a theory in the kernel test assembly that is deliberately not run per backend (argument validation, offline
/// PTX compilation); <c>BackendCoverageTests</c> requires every other theory to take its rows from <see cref="KernelBackends"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NotPerBackendAttribute(string reason) : Attribute
{
    /// <summary>Why the theory does not depend on the backend.</summary>
    public string Reason { get; } = reason;
}

/// <summary>One kernel family per backend, compiled on first use (compiling is the slow part of these tests).</summary>
/// <typeparam name="T">The kernel family, e.g. <c>GemmKernels</c>.</typeparam>
public sealed class PerBackend<T> : IDisposable
    where T : class
{
    private readonly Lazy<T>[] _kernels;

    /// <summary>Creates the lazy families over <paramref name="accelerators"/>.</summary>
    public PerBackend(BackendAccelerators accelerators, Func<KernelContext, T> create)
    {
        _kernels = [.. Enum.GetValues<KernelBackend>().Select(b => new Lazy<T>(() => create(accelerators.For(b))))];
    }

    /// <summary>The family of <paramref name="backend"/>.</summary>
    public T this[KernelBackend backend] => _kernels[(int)backend].Value;

    /// <summary>Disposes the created families that are disposable.</summary>
    public void Dispose()
    {
        foreach (var k in _kernels)
        {
            if (k.IsValueCreated && k.Value is IDisposable d)
                d.Dispose();
        }
    }
}
