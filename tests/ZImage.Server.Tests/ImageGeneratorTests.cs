#pragma warning disable MEAI001 // IImageGenerator is experimental in Microsoft.Extensions.AI.Abstractions.
using System.Drawing;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;
using ZImage.Server.Tests.Infrastructure;

namespace ZImage.Server.Tests;

public sealed class ImageGeneratorTests
{
    private static ServiceProvider FakeHost(FakeEngine engine)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IGenerationEngine>(engine);
        services.AddZImage(o =>
        {
            o.Budget.DeviceMemory = "1GiB"; o.Budget.SystemReserve = "0"; o.Budget.Buffer = "0";
            o.Budget.SizingWidth = 64; o.Budget.SizingHeight = 64;
        }).AddZImageImageGenerator().AddZImageImageGenerator();
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task Generator_InDiHost_ReturnsPngDataContents_WithMappedOptions()
    {
        await using var sp = FakeHost(new FakeEngine());
        var generator = sp.GetRequiredService<IImageGenerator>();
        var options = new ImageGenerationOptions
        {
            Count = 2,
            ImageSize = new Size(32, 48),
            MediaType = "image/png",
            ModelId = "fake",
            AdditionalProperties = new() { ["steps"] = 3, ["guidance"] = 2.5, ["seed"] = 9L, ["negative_prompt"] = "blur", ["mode"] = "Standard" },
        };
        var response = await generator.GenerateImagesAsync("a lighthouse", options);
        Assert.Equal(2, response.Contents.Count);
        var second = Assert.IsType<DataContent>(response.Contents[1]);
        Assert.Equal("image/png", second.MediaType);
        var p = PngMetadata.ReadParameters(second.Data.ToArray())!;
        Assert.Equal((32, 48, 3, 2.5f, 10L, "blur", GenerationMode.Standard), (p.Width, p.Height, p.Steps, p.Guidance, p.Seed, p.NegativePrompt, p.Mode));
        Assert.IsType<GenerationResult>(response.RawRepresentation);
    }

    [Fact]
    public void Registration_IsIdempotent_AndGetServiceExposesPipelineAndMetadata()
    {
        var engine = new FakeEngine();
        using var sp = FakeHost(engine);
        var generator = sp.GetRequiredService<IImageGenerator>();
        Assert.Same(sp.GetRequiredService<ZImageImageGenerator>(), generator);
        Assert.Same(sp.GetRequiredService<IImagePipeline>(), generator.GetService<IImagePipeline>());
        Assert.Same(sp.GetRequiredService<ImagePipeline>(), generator.GetService<ImagePipeline>());
        var metadata = generator.GetService<ImageGeneratorMetadata>()!;
        Assert.Equal(("zimage", "fake"), (metadata.ProviderName, metadata.DefaultModelId));
        Assert.Null(generator.GetService<ImageGeneratorMetadata>("some key"));
        Assert.Null(generator.GetService<string>());
    }

    [Fact]
    public async Task Edit_InDemoHost_RunsImg2Img_OnOriginalImage_WithStrengthFromProperties()
    {
        var services = new ServiceCollection();
        services.AddZImage(o =>
        {
            o.ImageEditing = true;
            o.Budget.DeviceMemory = "64MiB"; o.Budget.SystemReserve = "0"; o.Budget.Buffer = "0";
            o.Budget.SizingWidth = 16; o.Budget.SizingHeight = 16;
        }).AddZImageImageGenerator();
        await using var sp = services.BuildServiceProvider();
        var generator = sp.GetRequiredService<IImageGenerator>();
        var response = await generator.EditImageAsync(new DataContent(TestImages.RgbPng(16, 16), "image/png"), "a red door",
            new ImageGenerationOptions { AdditionalProperties = new() { ["strength"] = 0.5, ["steps"] = 2, ["seed"] = 3L } });
        var png = Assert.IsType<DataContent>(Assert.Single(response.Contents));
        var p = PngMetadata.ReadParameters(png.Data.ToArray())!;
        Assert.Equal((16, 16, 0.5f, false, 3L), (p.Width, p.Height, p.Strength, p.MaskGiven, p.Seed));
    }

    [Fact]
    public void EditMapping_SecondImageOrMaskProperty_IsTheMask_InEitherConvention()
    {
        var image = new DataContent(TestImages.RgbPng(16, 16), "image/png");
        var alpha = ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p", [image, new DataContent(TestImages.TransparentLeftHalfMask(16, 16), "image/png")]), null, "m");
        Assert.Equal((16, 16), (alpha.InitImage!.Width, alpha.InitImage.Height));
        Assert.Equal(((byte)255, (byte)0), (alpha.Mask!.Values[0], alpha.Mask.Values[15]));   // alpha 0 (left) repaints
        Assert.Null(alpha.Strength);

        var grey = ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p", [image]),
            new ImageGenerationOptions { AdditionalProperties = new() { ["mask"] = TestImages.WhiteTopHalfMask(16, 16), ["strength"] = 0.25f } }, "m");
        Assert.Equal(((byte)255, (byte)0), (grey.Mask!.Values[0], grey.Mask.Values[16 * 15]));  // white (top) repaints
        Assert.Equal(0.25f, grey.Strength);
    }

    [Fact]
    public void EditMapping_BadOriginals_AreTypedErrors_NamingThem()
    {
        var image = new DataContent(TestImages.RgbPng(16, 16), "image/png");
        var three = Assert.Throws<InvalidGenerationRequestException>(() => ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p", [image, image, image]), null, "m"));
        Assert.Equal("OriginalImages", three.ParamName);
        var twice = Assert.Throws<InvalidGenerationRequestException>(() => ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p", [image, image]),
            new ImageGenerationOptions { AdditionalProperties = new() { ["mask"] = TestImages.WhiteTopHalfMask(16, 16) } }, "m"));
        Assert.Equal("mask", twice.ParamName);
        var uri = Assert.Throws<NotSupportedException>(() => ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p", [new UriContent("https://example.invalid/a.png", "image/png")]), null, "m"));
        Assert.Contains("OriginalImages[0]", uri.Message, StringComparison.Ordinal);
        var junk = Assert.Throws<InvalidImageException>(() => ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p", [new DataContent(new byte[] { 1, 2, 3 }, "image/png")]), null, "m"));
        Assert.Contains("OriginalImages[0]", junk.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Edit_OnPipelineWithoutEditing_IsATypedErrorNamingTheSetting()
    {
        await using var sp = FakeHost(new FakeEngine());
        var generator = sp.GetRequiredService<IImageGenerator>();
        var e = await Assert.ThrowsAsync<InvalidGenerationRequestException>(() => generator.EditImageAsync(new DataContent(TestImages.RgbPng(16, 16), "image/png"), "make it blue"));
        Assert.Contains("ImageEditing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoProperties_LeaveStepsGuidanceAndSeedToThePreset()
    {
        var r = ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p"), new ImageGenerationOptions { AdditionalProperties = new() { ["mode"] = "standard" } }, "m");
        Assert.Equal(((int?)null, (float?)null, (long?)null, (float?)null, GenerationMode.Standard), (r.Steps, r.Guidance, r.Seed, r.Strength, r.Mode));
    }

    [Theory]
    [InlineData("image/jpeg")]
    public void UnsupportedMediaType_IsNotSupported(string mediaType) =>
        Assert.Throws<NotSupportedException>(() => ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p"), new ImageGenerationOptions { MediaType = mediaType }, "m"));

    [Fact]
    public void OtherModelId_AndBadProperty_AreRejected_NamingTheValue()
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p"), new ImageGenerationOptions { ModelId = "dall-e-3" }, "tiny-random"));
        Assert.Contains("dall-e-3", e.Message, StringComparison.Ordinal);
        var bad = Assert.Throws<InvalidGenerationRequestException>(() => ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p"),
            new ImageGenerationOptions { AdditionalProperties = new() { ["steps"] = "many" } }, "m"));
        Assert.Equal("steps", bad.ParamName);
    }

    [Fact]
    public void JsonElementProperties_AreMapped()
    {
        var json = JsonDocument.Parse("""{"steps":4,"guidance":1.5,"seed":12,"negative_prompt":"n","mode":"quality"}""").RootElement;
        var props = new AdditionalPropertiesDictionary();
        foreach (var p in json.EnumerateObject()) props[p.Name] = p.Value.Clone();
        var r = ZImageImageGenerator.ToGenerationRequest(new ImageGenerationRequest("p"), new ImageGenerationOptions { AdditionalProperties = props }, "m");
        Assert.Equal((4, 1.5f, 12L, "n", GenerationMode.Quality), (r.Steps, r.Guidance, r.Seed, r.NegativePrompt, r.Mode));
    }
}
