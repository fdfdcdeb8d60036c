namespace ZImage.Models.Tests.Vae;

/// <summary>Image-quality metrics on decoded images (values roughly in −1..1).</summary>
internal static class ImageMetrics
{
    /// <summary>
    /// PSNR in dB of <paramref name="actual"/> against <paramref name="expected"/> after the pipeline's mapping to
    /// displayable intensities, clamp(x·0.5 + 0.5, 0, 1) (peak 1). Identical images give +∞.
    /// </summary>
    public static double Psnr(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        if (expected.Length != actual.Length || expected.Length == 0)
            throw new ArgumentException($"Images of {expected.Length} and {actual.Length} values cannot be compared.", nameof(actual));
        double sum = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Display(expected[i]) - Display(actual[i]);
            sum += d * d;
        }
        double mse = sum / expected.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(1 / mse);
    }

    private static double Display(float x) => Math.Clamp(x * 0.5 + 0.5, 0, 1);
}
