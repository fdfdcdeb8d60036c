using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

public class PngMetadataTests
{
    private static RgbImage Gradient(int w, int h)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(i * 7 % 251);
        return new RgbImage(w, h, px);
    }

    private static GenerationParameters Params(string prompt) =>
        new(prompt, "blurry", GenerationMode.Standard, 48, 32, 25, 4f, 0.9f, 1.5f, 123456789012345, 1, false, "tiny-random");

    [Fact]
    public void PixelsAndParametersRoundTrip()
    {
        var img = Gradient(48, 32);
        var p = Params("a lighthouse at dusk");
        byte[] png = PngMetadata.Encode(img, PngMetadata.FromParameters(p));
        var back = PngMetadata.Decode(png);
        Assert.Equal((48, 32), (back.Width, back.Height));
        Assert.Equal(img.Pixels, back.Pixels);
        Assert.Equal(p, PngMetadata.ReadParameters(png));
        var text = PngMetadata.ReadText(png);
        Assert.Equal("ZImage", text["Software"]);
        Assert.Contains("Steps: 25", text["parameters"]);
        Assert.Contains("Seed: 123456789012345", text["parameters"]);
        Assert.Contains("Negative prompt: blurry", text["parameters"]);
    }

    [Fact]
    public void NonLatinPromptsUseUtf8ITXt()
    {
        var p = Params("一只可爱的橘色猫咪 🐈");
        byte[] png = PngMetadata.Encode(Gradient(16, 16), PngMetadata.FromParameters(p));
        Assert.Contains("iTXt"u8.ToArray(), Chunks(png));
        Assert.Equal(p.Prompt, PngMetadata.ReadParameters(png)!.Prompt);
        Assert.StartsWith(p.Prompt, PngMetadata.ReadText(png)["parameters"]);
    }

    [Fact]
    public void CorruptedChunkFailsTheCrcCheck()
    {
        byte[] png = PngMetadata.Encode(Gradient(16, 16), PngMetadata.FromParameters(Params("x")));
        int at = IndexOf(png, "Software"u8.ToArray());
        png[at + 9] ^= 0x20; // a byte of the value "ZImage"
        var e = Assert.Throws<InvalidDataException>(() => PngMetadata.ReadText(png));
        Assert.Contains("CRC", e.Message);
    }

    [Fact]
    public void ChunkLengthAboveTwoGibibytesIsInvalidDataNotAnOverflow()
    {
        // Fuzz regression (zimage-fuzz, png-metadata target): a length field >= 2^31 used to throw OverflowException.
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x83, 0x00, 0x18, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0];
        var e = Assert.Throws<InvalidDataException>(() => PngMetadata.ReadText(png));
        Assert.Contains("2197821695 bytes", e.Message);
    }

    [Fact]
    public void NotAPngIsRejected() => Assert.Throws<InvalidDataException>(() => PngMetadata.ReadText([1, 2, 3, 4, 5, 6, 7, 8, 9]));

    [Fact]
    public void PngWithoutParametersReadsNull()
    {
        byte[] png = PngMetadata.Encode(Gradient(16, 16), []);
        Assert.Null(PngMetadata.ReadParameters(png));
    }

    [Fact]
    public void DecoderOutputMapsToRgb8LikeTheReference()
    {
        // round(clamp(x*0.5+0.5,0,1)*255), ties to even: -1 -> 0, 1 -> 255, 0 -> 127.5 -> 128, 3 -> 255, 0.5 -> 191.25 -> 191; CHW in, HWC out.
        float[] chw = [-1f, 1f, 0f, 3f, -2f, 0.5f, 0f, 0f, 0f, 0f, 0f, 0f];
        var img = RgbImage.FromChw(chw, 2, 2);
        Assert.Equal(new byte[] { 0, 0, 128, 255, 191, 128, 128, 128, 128, 255, 128, 128 }, img.Pixels);
    }

    private static IEnumerable<byte[]> Chunks(byte[] png)
    {
        int pos = 8;
        while (pos + 8 <= png.Length)
        {
            int len = (png[pos] << 24) | (png[pos + 1] << 16) | (png[pos + 2] << 8) | png[pos + 3];
            yield return png[(pos + 4)..(pos + 8)];
            pos += 12 + len;
        }
    }

    private static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
            if (hay.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
