namespace ZImage.Kernels;

/// <summary>
/// Kernel-side math with the same accuracy on every backend. ILGPU.Algorithms maps <c>MathF.Tanh</c> to the PTX
/// instruction <c>tanh.approx.f32</c> (about 5e-4 relative error), too coarse for the DiT's tanh-gated residuals, so
/// the kernels call <see cref="Tanh"/>, which is built from <c>MathF.Exp</c> (<c>ex2.approx</c> on CUDA, about 2^-22
/// relative error) and stays within about 2e-6 relative of the exact value on the CPU and on CUDA alike.
/// </summary>
internal static class KernelMath
{
    // Below this magnitude 1 - 2/(e^2x + 1) cancels; the odd Taylor series to x^7 is exact to ~1e-9 relative there.
    private const float SeriesLimit = 0.125f;

    // tanh(9) = 1 - 3e-8 rounds to 1 in fp32; beyond it e^2x would only head for overflow.
    private const float SaturationLimit = 9f;

    /// <summary>tanh(<paramref name="x"/>) to about 2e-6 relative error; NaN stays NaN, ±∞ gives ±1.</summary>
    internal static float Tanh(float x)
    {
        float a = Math.Abs(x);
        if (a < SeriesLimit)
        {
            float x2 = x * x;
            return x * (1f + x2 * (-1f / 3f + x2 * (2f / 15f + x2 * (-17f / 315f))));
        }

        if (a > SaturationLimit)
            return x > 0f ? 1f : -1f;
        float r = 1f - 2f / (MathF.Exp(2f * a) + 1f);
        return x < 0f ? -r : r;
    }
}
