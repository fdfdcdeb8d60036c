using System.Globalization;
using ZImage.Runtime.Models.Tokenization;

namespace ZImage.Runtime.Pipeline;

/// <summary>The request guards on text, seeds and latents (called by <see cref="RequestResolver"/>).</summary>
internal static class RequestChecks
{
    /// <summary>
    /// Rejects text that is not well-formed UTF-16: a high surrogate not followed by a low one, or a low surrogate on
    /// its own. Such a string has no UTF-8 encoding, so the tokenizer could only replace the code unit (U+FFFD), which
    /// silently changes the prompt the user sent.
    /// </summary>
    /// <exception cref="InvalidGenerationRequestException">A lone surrogate; the message names its UTF-16 index.</exception>
    public static void WellFormedText(string parameter, string? text)
    {
        if (text is null || MalformedTextException.FindLoneSurrogate(text) is not { } i) return;
        throw new InvalidGenerationRequestException(parameter,
            $"text with a lone surrogate U+{(int)text[i]:X4} at UTF-16 index {i}", "well-formed UTF-16 text (every surrogate in a high+low pair)");
    }

    /// <summary>Image <c>i</c> uses seed <c>seed + i</c>: the last image's seed must not overflow a <see cref="long"/>.</summary>
    /// <exception cref="InvalidGenerationRequestException">The seed is above <c>long.MaxValue − (numImages − 1)</c>.</exception>
    public static void SeedRange(long seed, int numImages)
    {
        long max = long.MaxValue - (numImages - 1);
        if (seed > max)
            throw new InvalidGenerationRequestException(nameof(GenerationRequest.Seed), seed,
                $"{long.MinValue.ToString(CultureInfo.InvariantCulture)}..{max.ToString(CultureInfo.InvariantCulture)} for {numImages} images (image i uses seed + i)");
    }

    /// <summary>Initial latents must be finite: a NaN or infinity propagates through every step into a black image.</summary>
    /// <exception cref="InvalidGenerationRequestException">The first non-finite value and its flat index.</exception>
    public static void FiniteLatents(LatentTensor latents)
    {
        var data = latents.Data;
        for (int i = 0; i < data.Length; i++)
        {
            if (!float.IsFinite(data[i]))
                throw new InvalidGenerationRequestException(nameof(GenerationRequest.InitialLatents),
                    $"{data[i].ToString(CultureInfo.InvariantCulture)} at flat index {i}", "finite values (no NaN or infinity)");
        }
    }
}
