namespace ZImage.Runtime.Pipeline;

/// <summary>An 8-bit RGB image, row-major HWC (three bytes per pixel, no padding).</summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="pixels"/> (<c>width·height·3</c> bytes).</summary>
    /// <exception cref="ArgumentException">The buffer length does not match the size.</exception>
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (pixels.Length != (long)width * height * 3)
            throw new ArgumentException($"A {width}x{height} RGB image needs {(long)width * height * 3} bytes; got {pixels.Length}.", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>RGB bytes, row-major.</summary>
    public byte[] Pixels { get; }

    /// <summary>Converts a decoder output <c>[3,H,W]</c> (roughly −1..1) to RGB8: <c>round(clamp(x·0.5+0.5,0,1)·255)</c>, ties to even as numpy does.</summary>
    public static RgbImage FromChw(ReadOnlySpan<float> chw, int width, int height)
    {
        int plane = width * height;
        if (chw.Length != 3 * plane)
            throw new ArgumentException($"Expected [3,{height},{width}] = {3 * plane} floats; got {chw.Length}.", nameof(chw));
        var px = new byte[3 * plane];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < plane; i++)
            {
                float v = chw[c * plane + i] * 0.5f + 0.5f;
                v = v < 0f ? 0f : v > 1f ? 1f : v;
                px[i * 3 + c] = (byte)MathF.Round(v * 255f, MidpointRounding.ToEven);
            }
        return new RgbImage(width, height, px);
    }
}
