using ILGPU;
using ILGPU.Runtime;

// ILGPU's CPU backend emits a dynamic assembly named ILGPURuntime that must see the internal argument structs.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("ILGPURuntime")]

namespace ZImage.Kernels;

/// <summary>
/// How the threads of a chunked kernel cover the work items [0, N). Portable: few threads, each a contiguous range
/// (Step 1), which runs at plain-loop speed on the CPU simulator. GPU: up to <see cref="MaxGpuThreads"/> threads in a
/// grid-stride loop (Step = thread count), so neighbouring threads touch neighbouring elements (coalesced).
/// One kernel body serves both; only these numbers differ.
/// </summary>
internal readonly struct ElementwiseChunks
{
    /// <summary>Grid-stride cap: enough threads to saturate any current GPU, small enough that index math stays in int.</summary>
    public const int MaxGpuThreads = 1 << 20;

    /// <summary>Element counts above this are rejected so that first + step never overflows an int.</summary>
    public const int MaxItems = int.MaxValue - MaxGpuThreads;

    public readonly int N;
    public readonly int Threads;
    public readonly int FirstMul;
    public readonly int Step;
    public readonly int Span;

    private ElementwiseChunks(int n, int threads, int firstMul, int step, int span)
    {
        N = n;
        Threads = threads;
        FirstMul = firstMul;
        Step = step;
        Span = span;
    }

    /// <summary>Plans <paramref name="n"/> items for the context's variant.</summary>
    public static ElementwiseChunks For(KernelContext ctx, long n, string what)
    {
        ElementwiseChecks.Count(n, what);
        int items = (int)n;
        if (ctx.Variant == KernelVariant.Portable)
        {
            int threads = Math.Max(1, Math.Min(ctx.PortableChunks, items));
            int per = (items + threads - 1) / threads;
            threads = Math.Max(1, (items + per - 1) / per);
            return new ElementwiseChunks(items, threads, per, 1, per);
        }

        int t = Math.Max(1, Math.Min(items, MaxGpuThreads));
        return new ElementwiseChunks(items, t, 1, t, items);
    }

    /// <summary>Plans exactly <paramref name="slots"/> threads (used where each thread owns a reduction slot).</summary>
    public static ElementwiseChunks WithThreads(KernelContext ctx, int n, int slots)
    {
        int threads = Math.Max(1, slots);
        if (ctx.Variant == KernelVariant.Portable)
        {
            int per = Math.Max(1, (n + threads - 1) / threads);
            return new ElementwiseChunks(n, threads, per, 1, per);
        }

        return new ElementwiseChunks(n, threads, 1, threads, n);
    }

    /// <summary>First item of thread <paramref name="t"/> (may be ≥ N: then the thread has nothing to do).</summary>
    public int First(int t) => t * FirstMul;

    /// <summary>One past the last item of the thread whose first item is <paramref name="first"/>.</summary>
    public int Last(int first) => Span >= N - first ? N : first + Span;
}

/// <summary>Argument checks shared by the norm, conv, elementwise and diffusion kernel families (off the hot path).</summary>
internal static class ElementwiseChecks
{
    public static void Count(long n, string name)
    {
        if (n < 0 || n > ElementwiseChunks.MaxItems)
        {
            Throw(name, n, $"[0, {ElementwiseChunks.MaxItems}]");
        }
    }

    public static void Positive(long value, string name)
    {
        if (value <= 0 || value > ElementwiseChunks.MaxItems)
        {
            Throw(name, value, $"[1, {ElementwiseChunks.MaxItems}]");
        }
    }

    public static void NonNegative(long value, string name)
    {
        if (value < 0 || value > ElementwiseChunks.MaxItems)
        {
            Throw(name, value, $"[0, {ElementwiseChunks.MaxItems}]");
        }
    }

    public static void Eps(float eps, string name)
    {
        if (!(eps >= 0f) || float.IsInfinity(eps))
        {
            throw new ArgumentOutOfRangeException(name, eps, $"{name} must be a finite value ≥ 0.");
        }
    }

    public static void Finite(float value, string name)
    {
        if (!float.IsFinite(value))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite.");
        }
    }

    /// <summary>The view must hold at least <paramref name="required"/> elements.</summary>
    public static void Length<T>(ArrayView<T> view, long required, string name)
        where T : unmanaged
    {
        if (view.Length < required)
        {
            throw new ArgumentException(
                $"{name} has {view.Length} elements but at least {required} are required.", name);
        }
    }

    /// <summary>The view must be empty (meaning "none") or hold at least <paramref name="required"/> elements.</summary>
    public static void OptionalLength<T>(ArrayView<T> view, long required, string name)
        where T : unmanaged
    {
        if (view.Length != 0 && view.Length < required)
        {
            throw new ArgumentException(
                $"{name} has {view.Length} elements; pass an empty view for none, or at least {required}.", name);
        }
    }

    public static void Throw(string name, long value, string range) =>
        throw new ArgumentOutOfRangeException(name, value, $"{name} = {value} is outside the allowed range {range}.");
}
