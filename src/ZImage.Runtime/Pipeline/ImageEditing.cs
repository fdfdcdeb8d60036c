using System.Globalization;
using StbImageSharp;

namespace ZImage.Runtime.Pipeline;

/// <summary>An 8-bit single-channel mask (row-major, one byte per pixel): values ≥ 128 mark pixels to repaint, below 128 pixels to keep.</summary>
public sealed class MaskImage
{
    /// <summary>Wraps <paramref name="values"/> (width·height bytes).</summary>
    /// <exception cref="ArgumentException">The byte count does not match the size.</exception>
    public MaskImage(int width, int height, byte[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (values.Length != (long)width * height)
            throw new ArgumentException($"A {width}x{height} mask needs {(long)width * height} bytes; got {values.Length}.", nameof(values));
        Width = width;
        Height = height;
        Values = values;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The mask bytes, row-major.</summary>
    public byte[] Values { get; }
}

/// <summary>An image file that cannot be used as an init image or mask: unreadable, or not a format the decoder knows.</summary>
public sealed class InvalidImageException : Exception
{
    /// <summary>Creates the exception.</summary>
    public InvalidImageException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public InvalidImageException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception.</summary>
    public InvalidImageException() : base("The image cannot be read.") { }
}

/// <summary>The image inputs of an img2img or inpaint run, after validation.</summary>
/// <param name="Image">The init image (the output size).</param>
/// <param name="Mask">The inpaint mask (same size), or null for img2img.</param>
/// <param name="PosteriorNoise">Draws replacing the seeded VAE posterior noise, or null.</param>
internal sealed record EditInputs(RgbImage Image, MaskImage? Mask, LatentTensor? PosteriorNoise);

/// <summary>
/// diffusers' img2img/inpaint semantics that do not touch the device: the strength → first-step truncation, the
/// image preprocessing and the mask downsampling (see <c>ZImageImg2ImgPipeline</c>, <c>ZImageInpaintPipeline</c>).
/// </summary>
public static class ImageEditing
{
    /// <summary>diffusers' default strength of the img2img and inpaint pipelines.</summary>
    public const float DefaultStrength = 0.6f;

    /// <summary>
    /// The index of the first schedule step that runs: <c>init_timestep = min(N·strength, N)</c>,
    /// <c>t_start = int(max(N − init_timestep, 0))</c> (truncation toward zero). The strength is taken as the decimal
    /// it prints as (0.35f is 0.35, as a Python float would be), so 8 × 0.35 gives 2.8 and t_start 5.
    /// </summary>
    /// <param name="steps">N, the full schedule's step count (≥ 1).</param>
    /// <param name="strength">Strength in (0, 1].</param>
    /// <exception cref="ArgumentOutOfRangeException">steps &lt; 1 or strength outside (0, 1].</exception>
    public static int StartStep(int steps, float strength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        if (!(strength > 0f && strength <= 1f))
            throw new ArgumentOutOfRangeException(nameof(strength), strength, "strength must be in (0, 1].");
        double s = double.Parse(strength.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        double init = Math.Min(steps * s, steps);
        return (int)Math.Max(steps - init, 0);
    }

    /// <summary><c>VaeImageProcessor.preprocess</c> without resizing: <c>u8/255·2 − 1</c> as <c>[3,H,W]</c> float32 (channel-major).</summary>
    public static float[] ToModelInput(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int plane = image.Width * image.Height;
        var chw = new float[3 * plane];
        var px = image.Pixels;
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + i] = px[i * 3 + c] / 255f * 2f - 1f;
        return chw;
    }

    /// <summary>
    /// The latent-resolution inpaint mask: binarise (<c>u8/255 ≥ 0.5</c> → 1, so 127 keeps and 128 repaints), then
    /// PyTorch <c>F.interpolate(mode='nearest')</c> to <c>[H/f, W/f]</c>, which takes pixel (f·i, f·j) for latent (i, j).
    /// </summary>
    /// <param name="mask">The pixel mask.</param>
    /// <param name="factor">Pixels per latent along each axis (8); the mask's size must be a multiple of it.</param>
    public static float[] MaskToLatent(MaskImage mask, int factor)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentOutOfRangeException.ThrowIfLessThan(factor, 1);
        int h = mask.Height / factor, w = mask.Width / factor;
        var m = new float[h * w];
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                m[i * w + j] = Binarize(mask.Values[i * factor * mask.Width + j * factor]);
        return m;
    }

    /// <summary>The binarised pixel mask (1 = repaint), <c>[H,W]</c>.</summary>
    public static float[] BinarizedMask(MaskImage mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        return mask.Values.Select(Binarize).ToArray();
    }

    private static float Binarize(byte v) => v / 255f >= 0.5f ? 1f : 0f;

    /// <summary>Reads an init image (PNG, JPEG, BMP, TGA, GIF's first frame; alpha dropped) as RGB8.</summary>
    /// <exception cref="InvalidImageException">The file cannot be read or decoded.</exception>
    public static RgbImage LoadImage(string path)
    {
        var r = Decode(path, ColorComponents.RedGreenBlue);
        return new RgbImage(r.Width, r.Height, r.Data);
    }

    /// <summary>Reads a mask image as 8-bit grey (colour images are converted to luminance by the decoder); ≥ 128 repaints.</summary>
    /// <exception cref="InvalidImageException">The file cannot be read or decoded.</exception>
    public static MaskImage LoadMask(string path)
    {
        var r = Decode(path, ColorComponents.Grey);
        return new MaskImage(r.Width, r.Height, r.Data);
    }

    private static ImageResult Decode(string path, ColorComponents components)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidImageException($"Cannot read image file '{path}': {e.Message}", e);
        }
        try
        {
            return ImageResult.FromMemory(bytes, components);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidImageException($"'{path}' is not an image this decoder reads (PNG, JPEG, BMP, TGA, GIF): {e.Message}", e);
        }
    }
}

/// <summary>The img2img/inpaint checks of a request (typed errors naming the value and what is allowed).</summary>
internal static class EditRequestValidation
{
    /// <summary>Checks the edit fields against the resolved output size; returns the strength to run with, or null for text-to-image.</summary>
    /// <exception cref="InvalidGenerationRequestException">A field is out of range, mismatched or given without an init image.</exception>
    public static float? Check(GenerationRequest request, int width, int height)
    {
        if (request.InitImage is not { } image)
        {
            if (request.Strength is { } s)
                throw new InvalidGenerationRequestException(nameof(request.Strength), s, "only together with an InitImage (img2img/inpaint)");
            if (request.Mask is { } m)
                throw new InvalidGenerationRequestException(nameof(request.Mask), $"{m.Width}x{m.Height}", "only together with an InitImage (inpaint)");
            if (request.PosteriorNoise is not null)
                throw new InvalidGenerationRequestException(nameof(request.PosteriorNoise), "given", "only together with an InitImage");
            return null;
        }
        if (image.Width != width || image.Height != height)
            throw new InvalidGenerationRequestException(nameof(request.InitImage), $"{image.Width}x{image.Height}",
                $"the output size {width}x{height} (init images are not resized; both sides multiples of 16)");
        float strength = request.Strength ?? ImageEditing.DefaultStrength;
        if (!(strength > 0f && strength <= 1f))
            throw new InvalidGenerationRequestException(nameof(request.Strength), strength, "(0, 1]");
        if (request.Mask is { } mask && (mask.Width != width || mask.Height != height))
            throw new InvalidGenerationRequestException(nameof(request.Mask), $"{mask.Width}x{mask.Height}", $"the init image's size {width}x{height}");
        if (request.PosteriorNoise is { } eps)
        {
            int[] want = [request.NumImages, RequestResolver.LatentChannels, height / 8, width / 8];
            if (!eps.Shape.SequenceEqual(want))
                throw new InvalidGenerationRequestException(nameof(request.PosteriorNoise), $"[{string.Join(",", eps.Shape)}]", $"shape [{string.Join(",", want)}]");
        }
        return strength;
    }
}
