using System.Reflection;
using ZImage.Kernels.Tests.Infrastructure;

namespace ZImage.Kernels.Tests.Cuda;

/// <summary>
/// Every kernel conformance theory gets a CUDA row where ILGPU finds a device: each theory of this assembly takes a
/// <see cref="KernelBackend"/> first and reads its rows from a data source built by <see cref="KernelBackends"/>
/// (checked here by generating the rows a CUDA machine gets, on any machine), unless it is marked
/// <see cref="NotPerBackendAttribute"/> with a reason. A new theory with its own <c>bool gpu</c> rows or
/// <c>[InlineData]</c> fails this test.
/// </summary>
public sealed class BackendCoverageTests
{
    private static IEnumerable<MethodInfo> Theories() =>
        typeof(BackendCoverageTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttribute<TheoryAttribute>() is not null);

    [Fact]
    public void EveryConformanceTheoryTakesItsRowsFromThePerBackendDataSources()
    {
        var problems = new List<string>();
        int checkedTheories = 0;
        using (KernelBackends.PretendCudaForRows())
        {
            foreach (MethodInfo theory in Theories())
            {
                string name = $"{theory.DeclaringType!.Name}.{theory.Name}";
                if (theory.GetCustomAttribute<NotPerBackendAttribute>() is { } exempt)
                {
                    if (string.IsNullOrWhiteSpace(exempt.Reason)) problems.Add($"{name}: [NotPerBackend] without a reason");
                    continue;
                }
                checkedTheories++;
                ParameterInfo[] parameters = theory.GetParameters();
                if (parameters.Length == 0 || parameters[0].ParameterType != typeof(KernelBackend))
                {
                    problems.Add($"{name}: the first parameter is not a KernelBackend");
                    continue;
                }
                if (theory.GetCustomAttributes<InlineDataAttribute>().Any())
                    problems.Add($"{name}: [InlineData] rows cannot get a CUDA row; use KernelBackends.Matrix or All");
                var sources = theory.GetCustomAttributes<MemberDataAttribute>().ToList();
                if (sources.Count == 0) problems.Add($"{name}: no MemberData source");
                foreach (MemberDataAttribute source in sources)
                {
                    var rows = source.GetData(theory).ToList();
                    var backends = rows.Select(r => (KernelBackend)r[0]).ToHashSet();
                    // Some sources are portable-only on the CPU (the GPU-shaped simulator pays per thread); CUDA rows are required.
                    if (!backends.Contains(KernelBackend.Cuda)) problems.Add($"{name} ({source.MemberName}): no CUDA row when a device is present");
                    if (!backends.Contains(KernelBackend.CpuPortable) && !backends.Contains(KernelBackend.CpuGpuShaped))
                        problems.Add($"{name} ({source.MemberName}): no CPU row");
                    // CUDA runs every distinct CPU case once.
                    var cpuCases = rows.Where(r => (KernelBackend)r[0] != KernelBackend.Cuda).Select(Case).ToHashSet();
                    var cudaCases = rows.Where(r => (KernelBackend)r[0] == KernelBackend.Cuda).Select(Case).ToHashSet();
                    if (!cpuCases.SetEquals(cudaCases)) problems.Add($"{name} ({source.MemberName}): the CUDA rows are not the distinct CPU cases");
                }
            }
        }
        Assert.True(checkedTheories >= 20, $"only {checkedTheories} per-backend theories found; the reflection scan is broken");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void CudaRowsAreGeneratedExactlyWhenADeviceIsFound()
    {
        var rows = KernelBackends.Matrix(new TheoryData<int>(1, 2), new TheoryData<int>(2, 3)).Select(r => ((KernelBackend)r[0], (int)r[1])).ToList();
        List<(KernelBackend, int)> cpu = [(KernelBackend.CpuPortable, 1), (KernelBackend.CpuPortable, 2), (KernelBackend.CpuGpuShaped, 2), (KernelBackend.CpuGpuShaped, 3)];
        List<(KernelBackend, int)> cuda = [(KernelBackend.Cuda, 1), (KernelBackend.Cuda, 2), (KernelBackend.Cuda, 3)];
        Assert.Equal(KernelBackends.HasCuda ? [.. cpu, .. cuda] : cpu, rows);
        Assert.Equal(KernelBackends.HasCuda, KernelBackends.All().Cast<object[]>().Any(r => (KernelBackend)r[0] == KernelBackend.Cuda));
        using (KernelBackends.PretendCudaForRows())
        {
            var pretend = KernelBackends.Matrix(new TheoryData<int>(1, 2), new TheoryData<int>(2, 3)).Select(r => ((KernelBackend)r[0], (int)r[1]));
            Assert.Equal([.. cpu, .. cuda], pretend);
        }
    }

    private static string Case(object[] row) => string.Join('|', row.Skip(1));
}
