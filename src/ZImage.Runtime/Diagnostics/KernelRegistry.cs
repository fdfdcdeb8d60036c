using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZImage.Kernels;
using ZImage.Runtime.Compute;

namespace ZImage.Runtime.Diagnostics;

/// <summary>One kernel entry point that ZImage loads.</summary>
/// <param name="Family">The type that declares the kernel method, e.g. <c>GemmKernels</c>.</param>
/// <param name="Name">The kernel method's name with its generic arguments, e.g. <c>GpuKernel&lt;UInt16,Bf16Widener&gt;</c>.</param>
/// <param name="Variant"><c>gpu</c> when the GPU variant loads it (it runs on a CUDA device), <c>portable</c> when only the portable variant does.</param>
/// <param name="Method">The (constructed) kernel method.</param>
/// <param name="IsExplicitlyGrouped">Whether it is loaded as an explicitly grouped kernel (shared memory, barriers).</param>
internal sealed record KernelEntryPoint(string Family, string Name, string Variant, MethodInfo Method, bool IsExplicitlyGrouped);

/// <summary>
/// Finds every kernel entry point ZImage loads, by loading them: it builds <see cref="KernelComputeOps"/> (what the
/// runtime runs) plus every public kernel family of <c>ZImage.Kernels</c> (a class with a public constructor taking
/// a <see cref="KernelContext"/>) once in the portable and once in the GPU variant on ILGPU's CPU accelerator, and
/// reads the entry point behind every kernel delegate they hold. A kernel added to a family, a new family, or a new
/// generic instantiation joins without being listed anywhere.
/// </summary>
internal static class KernelRegistry
{
    private const int MaxDepth = 4;

    /// <summary>Discovers the entry points (ordered by family, variant, name). Takes a few seconds: it compiles every kernel for the CPU.</summary>
    public static IReadOnlyList<KernelEntryPoint> Discover()
    {
        using var context = IlgpuContexts.CreateCpu();
        using var portable = context.GetCPUDevice(0).CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel);
        using var gpuShaped = KernelContext.CreateGpuShapedCpuAccelerator(context);
        var gpu = Load(new KernelContext(gpuShaped, KernelVariant.Gpu));
        var port = Load(new KernelContext(portable, KernelVariant.Portable));
        var entries = new List<KernelEntryPoint>();
        foreach (var (method, explicitly) in gpu)
            entries.Add(Entry(method, explicitly, "gpu"));
        foreach (var (method, explicitly) in port)
        {
            if (!gpu.ContainsKey(method))
                entries.Add(Entry(method, explicitly, "portable"));
        }

        return [.. entries.OrderBy(e => e.Family, StringComparer.Ordinal).ThenBy(e => e.Variant, StringComparer.Ordinal).ThenBy(e => e.Name, StringComparer.Ordinal)];
    }

    /// <summary>The types of <c>ZImage.Kernels</c> that count as kernel families.</summary>
    public static IEnumerable<Type> FamilyTypes() =>
        typeof(KernelContext).Assembly.GetExportedTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && t.GetConstructor([typeof(KernelContext)]) is not null)
            .OrderBy(t => t.Name, StringComparer.Ordinal);

    private static KernelEntryPoint Entry(MethodInfo method, bool explicitly, string variant) =>
        new(method.DeclaringType!.Name, NameOf(method), variant, method, explicitly);

    private static string NameOf(MethodInfo method) =>
        method.IsGenericMethod ? method.Name + "<" + string.Join(",", method.GetGenericArguments().Select(a => a.Name)) + ">" : method.Name;

    /// <summary>The idempotent method by which a kernel family loads its bf16-activation kernels.</summary>
    internal const string LoadBf16Activations = "LoadBf16Activations";

    private static Dictionary<MethodInfo, bool> Load(KernelContext context)
    {
        var found = new Dictionary<MethodInfo, bool>();
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var roots = new List<object> { new KernelComputeOps(context) };
        foreach (var type in FamilyTypes())
            roots.Add(Activator.CreateInstance(type, context)!);
        try
        {
            // Families load their bf16-activation specialisations on first use (a CPU-accelerator compile each);
            // the registry asks for them so every entry point a generation can launch is listed and compiled.
            foreach (var root in roots)
                root.GetType().GetMethod(LoadBf16Activations, BindingFlags.Instance | BindingFlags.Public, Type.EmptyTypes)?.Invoke(root, null);
            foreach (var root in roots)
                Walk(root, 0, seen, found);
        }
        finally
        {
            foreach (var root in roots)
                (root as IDisposable)?.Dispose();
        }

        return found;
    }

    private static void Walk(object value, int depth, HashSet<object> seen, Dictionary<MethodInfo, bool> found)
    {
        if (!seen.Add(value))
            return;
        if (value is Delegate d)
        {
            if (d.TryGetKernel(out Kernel? kernel) && kernel?.CompiledKernel is { SourceMethod: { } method } compiled)
                found[method] = compiled.IndexType == IndexType.KernelConfig;
            return;
        }

        if (depth >= MaxDepth)
            return;
        if (value is Array array)
        {
            foreach (object? item in array)
            {
                if (item is not null)
                    Walk(item, depth + 1, seen, found);
            }

            return;
        }

        // Only ZImage's own objects hold kernels; ILGPU's accelerators and views are not walked.
        var type = value.GetType();
        if (!IsOurs(type))
            return;
        for (var t = type; t is not null && IsOurs(t); t = t.BaseType)
        {
            foreach (var field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (field.FieldType.IsPrimitive || field.FieldType.IsPointer)
                    continue;
                object? child = field.GetValue(value);
                if (child is null)
                    continue;
                if (child is Lazy<object> lazy && !lazy.IsValueCreated)
                    continue;
                Walk(child, depth + 1, seen, found);
            }
        }
    }

    private static bool IsOurs(Type type) =>
        type.Assembly == typeof(KernelContext).Assembly || type.Assembly == typeof(KernelRegistry).Assembly;
}
