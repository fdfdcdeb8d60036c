#pragma warning disable MEAI001 // IImageGenerator is experimental in Microsoft.Extensions.AI.Abstractions.
using System.Drawing;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;

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
    public async Task Edits_AreNotSupportedYet_WithAClearMessage()
    {
        await using var sp = FakeHost(new FakeEngine());
        var generator = sp.GetRequiredService<IImageGenerator>();
        var e = await Assert.ThrowsAsync<NotSupportedException>(() => generator.EditImageAsync(new DataContent(new byte[] { 1, 2, 3 }, "image/png"), "make it blue"));
        Assert.Contains("edits", e.Message, StringComparison.Ordinal);
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
