using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using ZImage.Runtime.Hosting;

namespace ZImage.Server;

/// <summary>Builds the ZImage web app: the OpenAI Images endpoints (generations, edits), memory/events/health/metrics and the page.</summary>
public static class ServerApp
{
    /// <summary>Builds the app from <paramref name="args"/> (standard ASP.NET Core configuration; section <c>ZImage</c> binds <see cref="ZImageOptions"/>).</summary>
    public static WebApplication Build(string[] args)
    {
        // The page is copied next to the assembly, so it is found whatever the working directory (dotnet run, tests).
        string webRoot = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, WebRootPath = Directory.Exists(webRoot) ? webRoot : null });
        ConfigureServices(builder.Services, builder.Configuration);
        var app = builder.Build();
        Map(app);
        return app;
    }

    /// <summary>Registers the pipeline with the server's policies, the events hub, the health check and the metrics exporter.</summary>
    public static void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddZImage(configuration.GetSection("ZImage"));
        services.PostConfigure<ZImageOptions>(o =>
        {
            // The server's policies (the original service's): out-of-range steps/guidance run as Standard with a
            // notice, a full queue answers 503 at once, previews feed the page.
            o.Limits.OutOfRange = OutOfRangePolicy.ResetToStandard;
            o.Queue.FullPolicy = QueueFullPolicy.Reject;
            o.EnablePreviews = true;
            // POST /v1/images/edits needs the VAE encoder (it adds its weights to the base segment); a host that
            // serves generations only sets ZImage:ImageEditing=false.
            if (configuration["ZImage:ImageEditing"] is null) o.ImageEditing = true;
            if (o.ModelDirectory is null)
            {
                // The demo model (a few MiB of weights, often on the CPU accelerator) gets a small device of its own
                // unless configured, so that the bar shows its segments rather than a sliver of a 24 GiB host, and an
                // inference segment sized for 256².
                var budget = configuration.GetSection("ZImage:Budget");
                if (budget["SizingWidth"] is null) { o.Budget.SizingWidth = 256; o.Budget.SizingHeight = 256; }
                if (budget["DeviceMemory"] is null) o.Budget.DeviceMemory = "64MiB";
                if (budget["SystemReserve"] is null) o.Budget.SystemReserve = "4MiB";
                if (budget["Buffer"] is null) o.Budget.Buffer = "8MiB";
            }
        });
        services.AddSingleton<ServerInfo>();
        services.AddSingleton<ServerEvents>();
        services.AddHostedService(sp => sp.GetRequiredService<ServerEvents>());
        services.AddSingleton<SizeCatalog>();
        services.AddSingleton<PrometheusExporter>();
        services.AddHealthChecks().AddZImageHealthCheck();
    }

    /// <summary>Maps the endpoints and the static page.</summary>
    public static void Map(WebApplication app)
    {
        // Created now, not at the first scrape, so that it sees every measurement from the start.
        app.Services.GetRequiredService<PrometheusExporter>();
        app.UseDefaultFiles();
        app.UseStaticFiles();
        ImagesEndpoints.Map(app);
        app.MapGet("/v1/memory", (ServerEvents events) => Results.Json(events.MemoryMessage(), ServerJson.Options));
        app.MapGet("/v1/sizes", (SizeCatalog sizes) => Results.Json(sizes.Get(), ServerJson.Options));
        app.MapGet("/v1/events", (ServerEvents events, HttpContext context) => events.StreamAsync(context));
        app.MapGet("/metrics", (PrometheusExporter exporter) => Results.Text(exporter.Scrape(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapHealthChecks("/health", new HealthCheckOptions { ResponseWriter = HealthWriter.WriteAsync, ResultStatusCodes =
        {
            [HealthStatus.Healthy] = StatusCodes.Status200OK,
            [HealthStatus.Degraded] = StatusCodes.Status200OK,
            [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
        } });
    }
}
