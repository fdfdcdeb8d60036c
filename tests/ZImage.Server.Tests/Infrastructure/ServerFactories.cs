using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;

namespace ZImage.Server.Tests.Infrastructure;

/// <summary>The server as configured from a clean clone: the tiny random-weight demo model, shared by a test collection.</summary>
public sealed class DemoServerFactory : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        // A 2-step Standard preset keeps the reset-to-Standard test cheap on the CPU accelerator.
        builder.UseSetting("ZImage:Presets:Standard:Steps", "2");
    }
}

[CollectionDefinition(Name)]
public sealed class DemoServerCollection : ICollectionFixture<DemoServerFactory>
{
    public const string Name = "demo server";
}

/// <summary>The server over a <see cref="FakeEngine"/> (instant, gateable stages) with a queue of <paramref name="capacity"/>.</summary>
public sealed class FakeServerFactory(FakeEngine engine, int capacity = 16) : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        builder.ConfigureTestServices(services =>
        {
            services.RemoveAll<IGenerationEngine>();
            services.AddSingleton<IGenerationEngine>(engine);
            services.PostConfigure<ZImageOptions>(o =>
            {
                o.Queue.Capacity = capacity;
                o.Budget.DeviceMemory = "1GiB";
                o.Budget.SystemReserve = "0";
                o.Budget.Buffer = "0";
                o.Budget.SizingWidth = 64;
                o.Budget.SizingHeight = 64;
            });
        });
    }
}

/// <summary>Helpers for the OpenAI-shaped wire format.</summary>
public static class Wire
{
    public const string Generations = "/v1/images/generations";

    public static async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(HttpClient client, object body)
    {
        var response = await client.PostAsJsonAsync(Generations, body);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        return ((int)response.StatusCode, json, response);
    }

    /// <summary>The <c>error</c> object, after checking it has OpenAI's four keys.</summary>
    public static JsonElement Error(JsonElement body)
    {
        var e = body.GetProperty("error");
        foreach (var key in new[] { "message", "type", "param", "code" })
            Assert.True(e.TryGetProperty(key, out _), $"error.{key} is missing in {body}");
        return e;
    }
}
