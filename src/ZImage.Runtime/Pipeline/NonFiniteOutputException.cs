namespace ZImage.Runtime.Pipeline;

/// <summary>
/// A generation produced NaN or infinite values (broken weights, or a numerical blow-up): the run fails instead of
/// writing a black image. <see cref="Stage"/> names where it was found: <see cref="DenoiseStage"/> for the latents after
/// the last denoising step (the text encoder and the transformer), <see cref="GenerationRunner.VaeStage"/> for the
/// decoded image.
/// </summary>
public sealed class NonFiniteOutputException : InvalidOperationException
{
    /// <summary>The stage name of the latents after the last denoising step.</summary>
    public const string DenoiseStage = "denoise";

    /// <summary>Creates the exception for <paramref name="count"/> non-finite values, the first at <paramref name="firstIndex"/>.</summary>
    public NonFiniteOutputException(string stage, string what, long count, long total, long firstIndex, float firstValue)
        : base($"The {stage} stage produced {count} non-finite value(s) out of {total} in {what} (first: {firstValue.ToString(System.Globalization.CultureInfo.InvariantCulture)} at flat index {firstIndex}); " +
               "the weights or the inputs are broken, so no image was produced.")
    {
        Stage = stage;
        Count = count;
        FirstIndex = firstIndex;
    }

    /// <summary>The stage whose output was not finite (<see cref="DenoiseStage"/> or <see cref="GenerationRunner.VaeStage"/>).</summary>
    public string Stage { get; }

    /// <summary>How many values were NaN or infinite.</summary>
    public long Count { get; }

    /// <summary>The flat index of the first one.</summary>
    public long FirstIndex { get; }

    /// <summary>Throws when <paramref name="values"/> holds a NaN or an infinity.</summary>
    /// <exception cref="NonFiniteOutputException">At least one value is not finite.</exception>
    public static void ThrowIfNonFinite(ReadOnlySpan<float> values, string stage, string what)
    {
        long count = 0, first = -1;
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsFinite(values[i])) continue;
            if (first < 0) first = i;
            count++;
        }
        if (count > 0)
            throw new NonFiniteOutputException(stage, what, count, values.Length, first, values[(int)first]);
    }
}
