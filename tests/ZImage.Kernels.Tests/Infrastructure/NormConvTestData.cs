using ILGPU;
using ILGPU.Runtime;

namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>Seeded inputs, device round trips with poisoned outputs, and tolerance checks against fp64 references.</summary>
public static class NormConvTestData
{
    /// <summary>Uniform values in [-scale, scale) from a fixed seed.</summary>
    public static float[] Random(int seed, long n, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    /// <summary>An array of NaN, so elements a kernel fails to write are caught.</summary>
    public static float[] Poison(long n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    /// <summary>Uploads host data.</summary>
    public static MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(Accelerator accelerator, T[] data)
        where T : unmanaged => accelerator.Allocate1D(data);

    /// <summary>Waits for the accelerator and downloads a buffer.</summary>
    public static T[] Download<T>(Accelerator accelerator, MemoryBuffer1D<T, Stride1D.Dense> buffer)
        where T : unmanaged
    {
        accelerator.Synchronize();
        return buffer.GetAsArray1D();
    }

    /// <summary>Asserts |actual − expected| ≤ atol + rtol·|expected| element-wise, naming the first bad index.</summary>
    public static void AssertClose(double[] expected, float[] actual, double atol = 1e-5, double rtol = 1e-5, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(a) || Math.Abs(a - e) > atol + rtol * Math.Abs(e))
            {
                Assert.Fail($"{what} element {i}: expected {e:R}, got {a:R} (atol {atol}, rtol {rtol})");
            }
        }
    }

    /// <summary>The values of a float array as doubles.</summary>
    public static double[] Widen(float[] a) => Array.ConvertAll(a, v => (double)v);

    /// <summary>fp64 SiLU.</summary>
    public static double Silu(double v) => v / (1 + Math.Exp(-v));
}
