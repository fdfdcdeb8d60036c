using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Images;
using ZImage.Runtime.Pipeline;
using ZImage.Server.Tests.Infrastructure;

namespace ZImage.Server.Tests;

/// <summary>
/// The official OpenAI .NET library (package <c>OpenAI</c>), unchanged, pointed at the test server: only the endpoint
/// and the transport (the test host's HttpClient) differ from a call to api.openai.com.
/// </summary>
[Collection(DemoServerCollection.Name)]
public sealed class OfficialOpenAiClientTests(DemoServerFactory factory)
{
    private ImageClient Client()
    {
        var http = factory.CreateClient();
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        };
        return new ImageClient("zimage-turbo", new ApiKeyCredential("sk-anything"), options);
    }

    private static GenerationParameters Parameters(BinaryData png) =>
        PngMetadata.ReadParameters(png.ToArray()) ?? throw new Xunit.Sdk.XunitException("the PNG carries no zimage parameters");

    [Fact]
    public async Task GenerateImage_Bytes_DecodesAsPngWithOurMetadata()
    {
        GeneratedImage image = await Client().GenerateImageAsync("a lighthouse at dusk",
            new ImageGenerationOptions { Size = new GeneratedImageSize(16, 16), ResponseFormat = GeneratedImageFormat.Bytes });
        Assert.Equal("a lighthouse at dusk", image.RevisedPrompt);
        var decoded = StbImageSharp.ImageResult.FromMemory(image.ImageBytes.ToArray());
        Assert.Equal((16, 16), (decoded.Width, decoded.Height));
        var p = Parameters(image.ImageBytes);
        Assert.Equal(("a lighthouse at dusk", 16, 16, GenerationMode.Turbo), (p.Prompt, p.Width, p.Height, p.Mode));
    }

    [Fact]
    public async Task GenerateImages_Uri_GivesPngDataUris_WithConsecutiveSeeds()
    {
        GeneratedImageCollection images = await Client().GenerateImagesAsync("two boats", 2,
            new ImageGenerationOptions { Size = new GeneratedImageSize(16, 16), ResponseFormat = GeneratedImageFormat.Uri });
        Assert.Equal(2, images.Count);
        var seeds = images.Select(i =>
        {
            string uri = i.ImageUri.OriginalString;
            Assert.StartsWith("data:image/png;base64,", uri, StringComparison.Ordinal);
            return Parameters(BinaryData.FromBytes(Convert.FromBase64String(uri["data:image/png;base64,".Length..]))).Seed;
        }).ToList();
        Assert.Equal(seeds[0] + 1, seeds[1]);
    }

    [Fact]
    public async Task GenerateImageEdit_WithMask_IsInpaint_OfTheImageSize()
    {
        using var image = new MemoryStream(TestImages.RgbPng(16, 16));
        using var mask = new MemoryStream(TestImages.TransparentLeftHalfMask(16, 16));
        GeneratedImage edited = await Client().GenerateImageEditAsync(image, "image.png", "a red door", mask, "mask.png",
            new ImageEditOptions { ResponseFormat = GeneratedImageFormat.Bytes });
        var p = Parameters(edited.ImageBytes);
        Assert.Equal(("a red door", 16, 16, ImageEditing.DefaultStrength, true), (p.Prompt, p.Width, p.Height, p.Strength, p.MaskGiven));
    }

    [Fact]
    public async Task Errors_SurfaceAsClientResultException_WithOurStatusAndMessage()
    {
        var client = Client();
        var size = await Assert.ThrowsAsync<ClientResultException>(() => client.GenerateImageAsync("p",
            new ImageGenerationOptions { Size = new GeneratedImageSize(30, 30) }));
        Assert.Equal(400, size.Status);
        Assert.Contains("multiple of 16", size.Message, StringComparison.Ordinal);
        Assert.Contains("size", size.Message, StringComparison.Ordinal);

        using var image = new MemoryStream(TestImages.RgbPng(16, 16));
        using var mask = new MemoryStream(TestImages.WhiteTopHalfMask(32, 32));
        var edit = await Assert.ThrowsAsync<ClientResultException>(() => client.GenerateImageEditAsync(image, "image.png", "p", mask, "mask.png"));
        Assert.Equal(400, edit.Status);
        Assert.Contains("Mask = 32x32 is invalid", edit.Message, StringComparison.Ordinal);
        Assert.Equal("mask", System.Text.Json.JsonDocument.Parse(edit.GetRawResponse()!.Content).RootElement.GetProperty("error").GetProperty("param").GetString());
    }
}
