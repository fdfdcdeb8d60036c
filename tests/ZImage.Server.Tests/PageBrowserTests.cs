using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using StbImageSharp;

namespace ZImage.Server.Tests;

/// <summary>
/// The page in Debian's Chromium (<c>apt-get install -y chromium</c>; <c>.ci/run</c> installs it), driven by
/// Playwright over a real Kestrel server with the demo model: one generation turns the bar yellow and back, a second
/// page shows the busy notice meanwhile, and a screenshot shows the bar and the image.
/// </summary>
public sealed class PageBrowserTests
{
    private const string ChromiumPath = "/usr/bin/chromium";

    [Fact]
    public async Task Page_Generates_BarTurnsYellowAndBack_SecondPageSeesBusy_ScreenshotShowsBarAndImage()
    {
        Assert.True(File.Exists(ChromiumPath), $"The browser test needs Debian's Chromium at {ChromiumPath}: run `apt-get install -y chromium` (.ci/run does).");
        await using var app = ServerApp.Build(["--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning"]);
        await app.StartAsync();
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"],
        });
        var first = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1000, Height = 1100 } });
        var second = await browser.NewPageAsync();
        await first.GotoAsync(url);
        await second.GotoAsync(url);
        foreach (var page in new[] { first, second })
            await page.WaitForSelectorAsync("body[data-events=open]");
        await first.WaitForSelectorAsync("#size option[value='64x64']", new() { State = WaitForSelectorState.Attached });
        Assert.Equal("Green", await first.GetAttributeAsync("#bar", "data-state"));
        // 1024² does not fit the demo model's inference segment, so the page does not offer it.
        Assert.Equal(0, await first.Locator("#size option[value='1024x1024']").CountAsync());

        // Record every state the bar takes, so that a short yellow phase cannot be missed between polls.
        await first.EvaluateAsync("""
            () => { window.barStates = [document.getElementById('bar').dataset.state];
                    new MutationObserver(() => window.barStates.push(document.getElementById('bar').dataset.state))
                        .observe(document.getElementById('bar'), { attributes: true, attributeFilter: ['data-state'] }); }
            """);
        await first.SelectOptionAsync("#size", "64x64");
        await first.FillAsync("#seed", "7");
        await first.FillAsync("#steps", "3");
        await first.ClickAsync("#generate");

        await second.WaitForSelectorAsync("#busy", new() { State = WaitForSelectorState.Visible, Timeout = 60_000 });
        Assert.Contains("another generation is running", await second.InnerTextAsync("#busy"), StringComparison.Ordinal);
        Assert.True(await first.IsHiddenAsync("#busy"), "the page that runs the generation must not call itself busy");

        await first.WaitForSelectorAsync("#result:not([hidden])", new() { Timeout = 120_000 });
        await first.WaitForFunctionAsync("() => document.getElementById('bar').dataset.state === 'Green'", null, new() { Timeout = 30_000 });
        await second.WaitForSelectorAsync("#busy", new() { State = WaitForSelectorState.Hidden, Timeout = 30_000 });
        var states = await first.EvaluateAsync<string[]>("() => window.barStates");
        Assert.Contains("Yellow", states);
        Assert.Equal("Green", states[^1]);
        Assert.Contains("64×64", await first.InnerTextAsync("#result-params"), StringComparison.Ordinal);
        Assert.Contains("7", await first.InnerTextAsync("#result-params"), StringComparison.Ordinal);

        // The screenshot shows the bar (its green base segment) and the image (not a blank box).
        byte[] shot = await first.ScreenshotAsync(new PageScreenshotOptions { FullPage = true });
        string outDir = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(outDir);
        await File.WriteAllBytesAsync(Path.Combine(outDir, "page-after-generation.png"), shot);
        var image = ImageResult.FromMemory(shot, ColorComponents.RedGreenBlue);
        var bar = (await first.Locator("#seg-base").BoundingBoxAsync())!;
        var (r, g, b) = Pixel(image, bar.X + bar.Width / 2, bar.Y + bar.Height / 2);
        Assert.True(g > 120 && r < 90 && b < 110, $"the base segment should be green (#2e9e44) in the screenshot; got rgb({r},{g},{b})");
        var box = (await first.Locator("#result-image").BoundingBoxAsync())!;
        var colours = new HashSet<(byte, byte, byte)>();
        for (int y = 2; y < box.Height - 2; y += 8)
            for (int x = 2; x < box.Width - 2; x += 8)
                colours.Add(Pixel(image, box.X + x, box.Y + y));
        Assert.True(colours.Count > 8, $"the generated image should show in the screenshot; saw {colours.Count} distinct colours in its box");
        await app.StopAsync();
    }

    private static (byte R, byte G, byte B) Pixel(ImageResult image, double x, double y)
    {
        int i = ((int)y * image.Width + (int)x) * 3;
        return (image.Data[i], image.Data[i + 1], image.Data[i + 2]);
    }
}
