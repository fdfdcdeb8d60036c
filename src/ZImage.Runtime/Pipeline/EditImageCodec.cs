using StbImageSharp;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// Decodes init images and masks that arrive as encoded bytes (an HTTP upload, a <c>DataContent</c>), with the
/// mask conventions of both APIs a host sees: an OpenAI edit mask marks the pixels to repaint with <b>alpha 0</b>
/// (fully transparent), a diffusers/CLI mask with <b>white</b> (grey ≥ 128).
/// </summary>
public static class EditImageCodec
{
    /// <summary>Decodes an init image (PNG, JPEG, BMP, TGA, GIF's first frame; alpha dropped) as RGB8.</summary>
    /// <param name="data">The encoded file.</param>
    /// <param name="name">What to call it in the error message (a form field or file name).</param>
    /// <exception cref="InvalidImageException">The bytes are not an image the decoder reads.</exception>
    public static RgbImage DecodeImage(byte[] data, string name)
    {
        var r = Decode(data, name, ColorComponents.RedGreenBlue);
        return new RgbImage(r.Width, r.Height, r.Data);
    }

    /// <summary>
    /// Decodes a mask. If the file has an alpha channel with any pixel below 255, it is an OpenAI edit mask: pixels with
    /// alpha 0 are repainted (255), all others kept (0). Otherwise the decoder's grey (luminance) value is the mask and
    /// values ≥ 128 are repainted, as in <see cref="ImageEditing.LoadMask"/>.
    /// </summary>
    /// <param name="data">The encoded file.</param>
    /// <param name="name">What to call it in the error message.</param>
    /// <exception cref="InvalidImageException">The bytes are not an image the decoder reads.</exception>
    public static MaskImage DecodeMask(byte[] data, string name)
    {
        var rgba = Decode(data, name, ColorComponents.RedGreenBlueAlpha);
        int count = rgba.Width * rgba.Height;
        bool transparent = false;
        for (int i = 0; i < count && !transparent; i++) transparent = rgba.Data[i * 4 + 3] < 255;
        if (transparent)
        {
            var values = new byte[count];
            for (int i = 0; i < count; i++) values[i] = rgba.Data[i * 4 + 3] == 0 ? (byte)255 : (byte)0;
            return new MaskImage(rgba.Width, rgba.Height, values);
        }
        var grey = Decode(data, name, ColorComponents.Grey);
        return new MaskImage(grey.Width, grey.Height, grey.Data);
    }

    private static ImageResult Decode(byte[] data, string name, ColorComponents components)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0) throw new InvalidImageException($"{name} is empty (0 bytes); expected a PNG, JPEG, BMP, TGA or GIF file.");
        try
        {
            return ImageResult.FromMemory(data, components);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidImageException($"{name} ({data.Length} bytes) is not an image this decoder reads (PNG, JPEG, BMP, TGA, GIF): {e.Message}", e);
        }
    }
}
