using System.Globalization;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// Parses the text forms hosts receive (an OpenAI <c>size</c> such as <c>"768x768"</c>, a mode name such as
/// <c>"turbo"</c>) into request values, with <see cref="InvalidGenerationRequestException"/> naming the field.
/// </summary>
public static class RequestText
{
    /// <summary>Parses <c>"WxH"</c> (also <c>"W×H"</c>, case-insensitive). Ranges are checked later by the pipeline.</summary>
    /// <param name="text">The size text.</param>
    /// <param name="parameter">The field name reported on failure.</param>
    /// <exception cref="InvalidGenerationRequestException">Not two positive integers separated by <c>x</c>.</exception>
    public static (int Width, int Height) ParseSize(string text, string parameter = "size")
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().Split(['x', 'X', '×'], 2);
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int w)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int h)
            && w > 0 && h > 0)
            return (w, h);
        throw new InvalidGenerationRequestException(parameter, text, "\"WIDTHxHEIGHT\" in pixels, e.g. \"768x768\"");
    }

    /// <summary>Parses a mode name (<c>turbo</c>, <c>standard</c>, <c>quality</c>; case-insensitive).</summary>
    /// <exception cref="InvalidGenerationRequestException">Not one of the three names.</exception>
    public static GenerationMode ParseMode(string text, string parameter = "mode")
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        if (t.Length > 0 && !char.IsDigit(t[0]) && t[0] != '-' && Enum.TryParse<GenerationMode>(t, ignoreCase: true, out var mode) && Enum.IsDefined(mode))
            return mode;
        throw new InvalidGenerationRequestException(parameter, text, "turbo, standard or quality");
    }

    /// <summary>
    /// The request field a pipeline parameter name belongs to in the OpenAI-style wire form: <c>Width</c>/<c>Height</c>
    /// → <c>size</c>, <c>NumImages</c> → <c>n</c>, <c>InitImage</c> → <c>image</c> (the edit upload), other names in
    /// snake_case (<c>NegativePrompt</c> → <c>negative_prompt</c>).
    /// </summary>
    public static string WireName(string? parameter) => parameter switch
    {
        null or "" => "",
        "Width" or "Height" or "Resolution" => "size",
        "NumImages" => "n",
        "InitImage" => "image",
        _ => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(parameter),
    };
}
