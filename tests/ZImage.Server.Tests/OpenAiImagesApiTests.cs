using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Pipeline;
using ZImage.Server.Tests.Infrastructure;

namespace ZImage.Server.Tests;

[Collection(DemoServerCollection.Name)]
public sealed class OpenAiImagesApiTests(DemoServerFactory factory)
{
    // Byte for byte what openai-python's client.images.generate(model=..., prompt=..., n=1, size=..., response_format="b64_json")
    // sends: a JSON body with only the given keys, Bearer auth and its own headers, which the server must tolerate.
    private static HttpRequestMessage OpenAiPythonRequest(string size) => new(HttpMethod.Post, "/v1/images/generations")
    {
        Content = new StringContent($$"""{"prompt":"a lighthouse at dusk","model":"zimage-turbo","n":1,"response_format":"b64_json","size":"{{size}}"}""", Encoding.UTF8, "application/json"),
        Headers =
        {
            Authorization = new AuthenticationHeaderValue("Bearer", "sk-anything"),
            Accept = { new MediaTypeWithQualityHeaderValue("application/json") },
            UserAgent = { new ProductInfoHeaderValue("OpenAI", "1.0") },
        },
    };

    [Fact]
    public async Task OpenAiPythonRequest_GetsOpenAiResponse_WithPngCarryingParameters()
    {
        using var client = factory.CreateClient();
        var request = OpenAiPythonRequest("16x16");
        request.Headers.Add("X-Stainless-Lang", "python");
        var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.True(body.GetProperty("created").GetInt64() > 1_700_000_000);
        var item = Assert.Single(body.GetProperty("data").EnumerateArray());
        Assert.Equal("a lighthouse at dusk", item.GetProperty("revised_prompt").GetString());
        byte[] png = Convert.FromBase64String(item.GetProperty("b64_json").GetString()!);
        var p = PngMetadata.ReadParameters(png);
        Assert.NotNull(p);
        Assert.Equal(("a lighthouse at dusk", 16, 16, GenerationMode.Turbo), (p!.Prompt, p.Width, p.Height, p.Mode));
        Assert.Equal("16x16", body.GetProperty("size").GetString());
    }

    [Fact]
    public async Task OurFields_AreUsed_AndUrlFormatReturnsPngDataUrl()
    {
        using var client = factory.CreateClient();
        var (status, body, _) = await Wire.PostAsync(client, new { prompt = "p", size = "16x16", response_format = "url", steps = 2, guidance = 1.5, seed = 42, negative_prompt = "blur", mode = "standard" });
        Assert.Equal(200, status);
        string url = body.GetProperty("data")[0].GetProperty("url").GetString()!;
        Assert.StartsWith("data:image/png;base64,", url, StringComparison.Ordinal);
        var p = PngMetadata.ReadParameters(Convert.FromBase64String(url["data:image/png;base64,".Length..]))!;
        Assert.Equal((2, 1.5f, 42L, "blur", GenerationMode.Standard), (p.Steps, p.Guidance, p.Seed, p.NegativePrompt, p.Mode));
    }

    [Fact]
    public async Task Size30x30_Is400_NamingSize()
    {
        using var client = factory.CreateClient();
        var response = await client.SendAsync(OpenAiPythonRequest("30x30"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var e = Wire.Error(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement);
        Assert.Equal("size", e.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", e.GetProperty("type").GetString());
        Assert.Contains("30", e.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("multiple of 16", e.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"n":1}""", "prompt")]
    [InlineData("""{"prompt":"p","size":"big"}""", "size")]
    [InlineData("""{"prompt":"p","n":9}""", "n")]
    [InlineData("""{"prompt":"p","mode":"fast"}""", "mode")]
    [InlineData("""{"prompt":"p","response_format":"xml"}""", "response_format")]
    [InlineData("""{"prompt":"p","steps":"many"}""", "steps")]
    [InlineData("""{"prompt":"p","stream":true}""", "stream")]
    public async Task BadField_Is400_NamingThatField(string json, string param)
    {
        using var client = factory.CreateClient();
        var response = await client.PostAsync(Wire.Generations, new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var e = Wire.Error(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement);
        Assert.Equal(param, e.GetProperty("param").GetString());
    }

    [Fact]
    public async Task BrokenJson_Is400_InOpenAiErrorShape()
    {
        using var client = factory.CreateClient();
        var response = await client.PostAsync(Wire.Generations, new StringContent("{\"prompt\":", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var e = Wire.Error(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement);
        Assert.Equal(JsonValueKind.Null, e.GetProperty("param").ValueKind);
    }

    [Fact]
    public async Task OverBudgetSize_IsRefused_WithNeedsMoreAndWhatFits()
    {
        using var client = factory.CreateClient();
        var (status, body, _) = await Wire.PostAsync(client, new { prompt = "p", size = "1024x1024" });
        Assert.Equal(400, status);
        var e = Wire.Error(body);
        Assert.Equal("size", e.GetProperty("param").GetString());
        Assert.Equal("exceeds_memory_budget", e.GetProperty("code").GetString());
        Assert.Matches(@"needs \d+(\.\d+)? [KMG]iB more", e.GetProperty("message").GetString());
        Assert.True(e.GetProperty("needs_more_bytes").GetInt64() > 0);
        Assert.Equal(JsonValueKind.Array, e.GetProperty("fits").ValueKind);
    }

    [Fact]
    public async Task OutOfRangeSteps_RunAsStandard_WithResetNoticeAndExtraMemory()
    {
        using var client = factory.CreateClient();
        var (status, body, _) = await Wire.PostAsync(client, new { prompt = "p", size = "16x16", steps = 80, seed = 1 });
        Assert.Equal(200, status);
        var z = body.GetProperty("zimage");
        Assert.Equal("Standard", z.GetProperty("parameters").GetProperty("mode").GetString());
        var reset = z.GetProperty("reset");
        Assert.Contains("steps 80 is outside 1..50; ran as Standard (2 steps", reset.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(80, reset.GetProperty("requested_steps").GetInt32());
        Assert.True(reset.GetProperty("extra_memory_bytes").GetInt64() >= 0);
        Assert.True(reset.GetProperty("rejected_peak_bytes").GetInt64() > 0);
    }

    [Fact]
    public async Task Memory_Health_Metrics_DescribeTheDemoServer()
    {
        using var client = factory.CreateClient();
        Assert.Equal(200, (await Wire.PostAsync(client, new { prompt = "p", size = "16x16", steps = 1 })).Status);

        var memory = JsonDocument.Parse(await client.GetStringAsync("/v1/memory")).RootElement;
        Assert.Equal("Green", memory.GetProperty("state").GetString());
        Assert.True(memory.GetProperty("demo_model").GetBoolean());
        Assert.Contains("demo", memory.GetProperty("demo_notice").GetString(), StringComparison.OrdinalIgnoreCase);
        long total = memory.GetProperty("total_bytes").GetInt64();
        long parts = memory.GetProperty("system_reserve_bytes").GetInt64() + memory.GetProperty("base_bytes").GetInt64()
            + memory.GetProperty("inference_limit_bytes").GetInt64() + memory.GetProperty("buffer_bytes").GetInt64() + memory.GetProperty("free_bytes").GetInt64();
        Assert.Equal(total, parts);
        Assert.Equal("Started", memory.GetProperty("pipeline_state").GetString());
        var load = memory.GetProperty("load");
        Assert.Equal(("Ready", 4, 4), (load.GetProperty("stage").GetString(), load.GetProperty("completed").GetInt32(), load.GetProperty("total").GetInt32()));

        var health = await client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var h = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Healthy", h.GetProperty("status").GetString());
        Assert.Equal("Healthy", h.GetProperty("checks").GetProperty("zimage").GetProperty("status").GetString());

        var metrics = await client.GetAsync("/metrics");
        Assert.StartsWith("text/plain", metrics.Content.Headers.ContentType!.MediaType, StringComparison.Ordinal);
        string text = await metrics.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE zimage_generations_total counter", text, StringComparison.Ordinal);
        Assert.Matches(@"zimage_generations_total\{outcome=""completed""\} [1-9]", text);
        Assert.Contains("# TYPE zimage_memory_base_bytes gauge", text, StringComparison.Ordinal);
        Assert.Matches(@"\nzimage_memory_inference_bytes [1-9]\d*\n", text);
        Assert.Contains("# TYPE zimage_step_duration_seconds histogram", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sizes_OfferOnlyWhatTheBudgetAdmits()
    {
        using var client = factory.CreateClient();
        var sizes = JsonDocument.Parse(await client.GetStringAsync("/v1/sizes")).RootElement.EnumerateArray().ToList();
        var turbo = sizes.ToDictionary(s => (s.GetProperty("width").GetInt32(), s.GetProperty("height").GetInt32()), s => s.GetProperty("modes").GetProperty("turbo"));
        Assert.True(turbo[(64, 64)].GetProperty("fits").GetBoolean());
        Assert.False(turbo[(1024, 1024)].GetProperty("fits").GetBoolean());
        Assert.Contains("needs", turbo[(1024, 1024)].GetProperty("verdict").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Page_IsServedWithoutCdn()
    {
        using var client = factory.CreateClient();
        string html = await client.GetStringAsync("/");
        Assert.Contains("id=\"bar\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http", html.Replace("http-equiv", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("EventSource", await client.GetStringAsync("/app.js"), StringComparison.Ordinal);
    }
}
