using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ZImage.Runtime.Pipeline;
using ZImage.Server.Tests.Infrastructure;

namespace ZImage.Server.Tests;

[Collection(DemoServerCollection.Name)]
public sealed class EditsEndpointTests(DemoServerFactory factory)
{
    private const string Edits = "/v1/images/edits";

    private static MultipartFormDataContent Form(byte[]? image, byte[]? mask = null, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        if (image is not null) form.Add(Png(image), "image", "image.png");
        if (mask is not null) form.Add(Png(mask), "mask", "mask.png");
        foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
        return form;
    }

    private static ByteArrayContent Png(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return content;
    }

    private async Task<(int Status, JsonElement Body)> PostAsync(HttpContent content)
    {
        using var client = factory.CreateClient();
        var response = await client.PostAsync(Edits, content);
        return ((int)response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    [Fact]
    public async Task Inpaint_WithOurFields_ReturnsPngOfTheImageSize_RecordingStrengthAndMask()
    {
        var (status, body) = await PostAsync(Form(TestImages.RgbPng(16, 16), TestImages.TransparentLeftHalfMask(16, 16),
            ("prompt", "a red door"), ("strength", "0.5"), ("steps", "2"), ("seed", "7"), ("response_format", "b64_json")));
        Assert.True(status == 200, body.ToString());
        Assert.Equal("16x16", body.GetProperty("size").GetString());
        byte[] png = Convert.FromBase64String(body.GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        var p = PngMetadata.ReadParameters(png)!;
        Assert.Equal(("a red door", 16, 16, 2, 7L, 0.5f, true), (p.Prompt, p.Width, p.Height, p.Steps, p.Seed, p.Strength, p.MaskGiven));
    }

    [Theory]
    [InlineData("missing-image", "image", "invalid_value")]
    [InlineData("not-an-image", "image", "invalid_image_format")]
    [InlineData("image-24x24", "image", "invalid_value")]
    [InlineData("size-mismatch", "image", "invalid_value")]
    [InlineData("mask-8x8", "mask", "invalid_value")]
    [InlineData("mask-not-an-image", "mask", "invalid_image_format")]
    [InlineData("strength-1.5", "strength", "invalid_value")]
    [InlineData("strength-0", "strength", "invalid_value")]
    [InlineData("strength-abc", "strength", "invalid_value")]
    [InlineData("no-prompt", "prompt", "invalid_value")]
    public async Task BadEdit_Is400_NamingTheParam(string @case, string param, string code)
    {
        byte[] image16 = TestImages.RgbPng(16, 16);
        var form = @case switch
        {
            "missing-image" => Form(null, null, ("prompt", "p")),
            "not-an-image" => Form([1, 2, 3, 4], null, ("prompt", "p")),
            "image-24x24" => Form(TestImages.RgbPng(24, 24), null, ("prompt", "p")),
            "size-mismatch" => Form(image16, null, ("prompt", "p"), ("size", "32x32")),
            "mask-8x8" => Form(image16, TestImages.WhiteTopHalfMask(8, 8), ("prompt", "p")),
            "mask-not-an-image" => Form(image16, [9, 9], ("prompt", "p")),
            "strength-1.5" => Form(image16, null, ("prompt", "p"), ("strength", "1.5")),
            "strength-0" => Form(image16, null, ("prompt", "p"), ("strength", "0")),
            "strength-abc" => Form(image16, null, ("prompt", "p"), ("strength", "abc")),
            "no-prompt" => Form(image16),
            _ => throw new ArgumentOutOfRangeException(nameof(@case)),
        };
        var (status, body) = await PostAsync(form);
        Assert.Equal(400, status);
        var e = Wire.Error(body);
        Assert.Equal((param, code), (e.GetProperty("param").GetString(), e.GetProperty("code").GetString()));
        Assert.Contains(param, e.GetProperty("message").GetString()!, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task JsonBody_Is400_AskingForMultipart()
    {
        var (status, body) = await PostAsync(JsonContent.Create(new { prompt = "p" }));
        Assert.Equal(400, status);
        Assert.Contains("multipart/form-data", Wire.Error(body).GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
