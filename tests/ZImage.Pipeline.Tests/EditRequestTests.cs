using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

/// <summary>img2img/inpaint request checks and the host-side semantics (strength truncation, mask downsampling, image files).</summary>
public class EditRequestTests
{
    private static readonly RgbImage Image64 = new(64, 64, new byte[64 * 64 * 3]);

    private static ResolvedRequest Resolve(GenerationRequest r) =>
        RequestResolver.Resolve(r, TestPipelines.Options(), demoModel: false, modelName: "m", seedSource: () => 99);

    [Theory]
    [InlineData(0.6f, 3)]
    [InlineData(0.35f, 5)]
    [InlineData(0.5f, 4)]
    [InlineData(0.8f, 1)]
    [InlineData(0.75f, 2)]
    [InlineData(0.45f, 4)]
    [InlineData(0.7f, 2)]
    [InlineData(0.65f, 2)]
    [InlineData(1.0f, 0)]
    [InlineData(0.01f, 7)]
    public void StrengthTruncatesTheScheduleLikeDiffusers(float strength, int expectedStart) =>
        Assert.Equal(expectedStart, ImageEditing.StartStep(8, strength));

    [Fact]
    public async Task EditRequestOnAnEngineWithoutImageEditingIsATypedErrorBeforeAnythingRuns()
    {
        var engine = new FakeEngine();
        using var pipeline = TestPipelines.Create(engine);
        var request = new GenerationRequest { Prompt = "x", InitImage = Image64, Strength = 0.5f };
        var e = Assert.Throws<InvalidGenerationRequestException>(() => pipeline.Plan(request));
        Assert.Equal(nameof(GenerationRequest.InitImage), e.ParamName);
        Assert.Contains("ImageEditing", e.Message, StringComparison.Ordinal);
        var run = await Assert.ThrowsAsync<InvalidGenerationRequestException>(() => pipeline.GenerateAsync(request));
        Assert.Equal(nameof(GenerationRequest.InitImage), run.ParamName);
        Assert.Equal(0, engine.GetMemoryStats().WorkspaceBytes);
        Assert.Equal(0, engine.DecodeCount);
    }

    [Fact]
    public void InitImageSetsTheDefaultSizeAndStrength()
    {
        var r = Resolve(new GenerationRequest { Prompt = "x", InitImage = Image64 });
        Assert.Equal((64, 64), (r.Parameters.Width, r.Parameters.Height));
        Assert.Equal(ImageEditing.DefaultStrength, r.Parameters.Strength);
        Assert.False(r.Parameters.MaskGiven);
        Assert.Same(Image64, r.Edit!.Image);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(-0.1f)]
    [InlineData(1.01f)]
    [InlineData(float.NaN)]
    public void StrengthOutsideZeroToOneIsRejected(float strength)
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", InitImage = Image64, Strength = strength }));
        Assert.Equal("Strength", e.ParamName);
        Assert.Contains("(0, 1]", e.Message);
    }

    [Fact]
    public void InitImageOfAnotherSizeIsRejected()
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", InitImage = Image64, Width = 128, Height = 64 }));
        Assert.Equal("InitImage", e.ParamName);
        Assert.Contains("64x64", e.Message);
        Assert.Contains("128x64", e.Message);
    }

    [Fact]
    public void MaskOfAnotherSizeIsRejected()
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() =>
            Resolve(new GenerationRequest { Prompt = "x", InitImage = Image64, Mask = new MaskImage(32, 64, new byte[32 * 64]) }));
        Assert.Equal("Mask", e.ParamName);
        Assert.Contains("32x64", e.Message);
    }

    [Fact]
    public void EditFieldsWithoutAnInitImageAreRejected()
    {
        Assert.Equal("Strength", Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", Strength = 0.5f })).ParamName);
        Assert.Equal("Mask", Assert.Throws<InvalidGenerationRequestException>(() =>
            Resolve(new GenerationRequest { Prompt = "x", Mask = new MaskImage(64, 64, new byte[64 * 64]) })).ParamName);
    }

    [Fact]
    public void PosteriorNoiseOfTheWrongShapeIsRejected()
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() =>
            Resolve(new GenerationRequest { Prompt = "x", InitImage = Image64, PosteriorNoise = new LatentTensor(new float[16 * 4 * 4], [1, 16, 4, 4]) }));
        Assert.Equal("PosteriorNoise", e.ParamName);
        Assert.Contains("[1,16,8,8]", e.Message);
    }

    [Fact]
    public void MaskIsBinarisedAtHalfAndSampledAtTheTopLeftPixelOfEachBlock()
    {
        var values = new byte[16 * 16];
        values[0] = 128;            // latent (0,0): its top-left pixel repaints
        values[8] = 127;            // latent (0,1): 127 keeps
        values[8 * 16 + 1] = 255;   // latent (1,0): not the top-left pixel → keep
        values[8 * 16 + 8] = 200;   // latent (1,1): repaint
        var m = ImageEditing.MaskToLatent(new MaskImage(16, 16, values), 8);
        Assert.Equal([1f, 0f, 0f, 1f], m);
    }

    [Fact]
    public void ImageFilesRoundTripAndBadFilesGiveATypedError()
    {
        string dir = Path.Combine(Path.GetTempPath(), "zimage-edit-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var px = new byte[32 * 16 * 3];
            for (int i = 0; i < px.Length; i++) px[i] = (byte)(i * 7);
            string png = Path.Combine(dir, "init.png");
            File.WriteAllBytes(png, PngMetadata.Encode(new RgbImage(32, 16, px), []));
            var back = ImageEditing.LoadImage(png);
            Assert.Equal((32, 16), (back.Width, back.Height));
            Assert.Equal(px, back.Pixels);
            Assert.Equal(32 * 16, ImageEditing.LoadMask(png).Values.Length);

            string bad = Path.Combine(dir, "bad.png");
            File.WriteAllText(bad, "not an image");
            var e = Assert.Throws<InvalidImageException>(() => ImageEditing.LoadImage(bad));
            Assert.Contains("bad.png", e.Message);
            Assert.Throws<InvalidImageException>(() => ImageEditing.LoadMask(Path.Combine(dir, "missing.png")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
