using StbImageWriteSharp;

namespace ZImage.Server.Tests.Infrastructure;

/// <summary>Small encoded images for the edit tests.</summary>
public static class TestImages
{
    /// <summary>A <paramref name="width"/>×<paramref name="height"/> RGB PNG with a diagonal gradient.</summary>
    public static byte[] RgbPng(int width, int height)
    {
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                px[i] = (byte)(x * 255 / Math.Max(1, width - 1));
                px[i + 1] = (byte)(y * 255 / Math.Max(1, height - 1));
                px[i + 2] = 128;
            }
        return Write(px, width, height, ColorComponents.RedGreenBlue);
    }

    /// <summary>An OpenAI-style RGBA mask: the left half fully transparent (repaint), the right half opaque (keep).</summary>
    public static byte[] TransparentLeftHalfMask(int width, int height)
    {
        var px = new byte[width * height * 4];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                px[(y * width + x) * 4 + 3] = x < width / 2 ? (byte)0 : (byte)255;
        return Write(px, width, height, ColorComponents.RedGreenBlueAlpha);
    }

    /// <summary>A diffusers-style grey mask: the top half white (repaint), the bottom half black (keep).</summary>
    public static byte[] WhiteTopHalfMask(int width, int height)
    {
        var px = new byte[width * height];
        for (int y = 0; y < height / 2; y++)
            for (int x = 0; x < width; x++)
                px[y * width + x] = 255;
        return Write(px, width, height, ColorComponents.Grey);
    }

    private static byte[] Write(byte[] px, int width, int height, ColorComponents components)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WritePng(px, width, height, components, stream);
        return stream.ToArray();
    }
}
