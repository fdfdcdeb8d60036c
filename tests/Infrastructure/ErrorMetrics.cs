namespace ZImage.Tests.Infrastructure;

/// <summary>Whole-tensor error measures for reduced-precision runs against a float32 reference.</summary>
public static class ErrorMetrics
{
    /// <summary>1 − cosine similarity and the relative L2 error ‖actual − reference‖ / ‖reference‖, in double.</summary>
    public static (double OneMinusCosine, double RelativeL2) Compare(ReadOnlySpan<float> reference, ReadOnlySpan<float> actual)
    {
        if (reference.Length != actual.Length)
            throw new ArgumentException($"Lengths differ: reference {reference.Length}, actual {actual.Length}.", nameof(actual));
        double dot = 0, na = 0, nb = 0, nd = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double r = reference[i], a = actual[i];
            dot += r * a;
            na += r * r;
            nb += a * a;
            nd += (a - r) * (a - r);
        }
        return (1 - dot / Math.Sqrt(na * nb), Math.Sqrt(nd / na));
    }

    /// <summary>PSNR in dB of <paramref name="actual"/> against <paramref name="reference"/>, the peak being max|reference| (∞ when equal).</summary>
    public static double Psnr(ReadOnlySpan<float> reference, ReadOnlySpan<float> actual)
    {
        if (reference.Length != actual.Length)
            throw new ArgumentException($"Lengths differ: reference {reference.Length}, actual {actual.Length}.", nameof(actual));
        double peak = 0, se = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            peak = Math.Max(peak, Math.Abs((double)reference[i]));
            double d = (double)actual[i] - reference[i];
            se += d * d;
        }
        return se == 0 ? double.PositiveInfinity : 10 * Math.Log10(peak * peak / (se / reference.Length));
    }
}
