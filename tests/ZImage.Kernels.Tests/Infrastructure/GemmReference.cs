namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>Seeded random inputs and float64 reference implementations for the GEMM/attention/RoPE tests.</summary>
public static class GemmReference
{
    /// <summary>Uniform values in [-scale, scale).</summary>
    public static float[] Random(Random rng, int length, float scale = 1f)
    {
        var a = new float[length];
        for (int i = 0; i < length; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    /// <summary>
    /// y = x·wᵀ + b in float64, plus each output's magnitude Σ|x·w| + |b| (the scale fp32 rounding errors grow with).
    /// </summary>
    public static (double[] Y, double[] Magnitude) Linear(float[] x, float[] w, float[]? bias, int m, int n, int k)
    {
        var y = new double[m * n];
        var mag = new double[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0, a = 0;
            for (int t = 0; t < k; t++)
            {
                double p = (double)x[i * k + t] * w[j * k + t];
                s += p;
                a += Math.Abs(p);
            }
            if (bias is not null) { s += bias[j]; a += Math.Abs(bias[j]); }
            y[i * n + j] = s;
            mag[i * n + j] = a;
        }
        return (y, mag);
    }

    /// <summary>
    /// Asserts every element is within <paramref name="relTol"/>·magnitude (plus a tiny absolute floor) of the reference,
    /// reporting the first failing index. NaN (an unwritten, poisoned output) always fails.
    /// </summary>
    public static void AssertClose(double[] expected, double[] magnitude, float[] actual, double relTol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = relTol * magnitude[i] + 1e-12;
            double err = Math.Abs(actual[i] - expected[i]);
            if (!(err <= tol))
                Assert.Fail($"{what}: element {i} = {actual[i]} but expected {expected[i]} (|err| {err:E3} > tol {tol:E3}).");
        }
    }
}
