#pragma warning disable MEAI001 // IImageGenerator is experimental in Microsoft.Extensions.AI.Abstractions.
using System.Drawing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;
using ZImage.Tests.Infrastructure;

namespace ZImage.Server.Tests;

/// <summary>
/// The README's host snippet, compiled and run here as written (between the <c>README-SNIPPET</c> markers), and a
/// check that README.md still shows exactly this code, so that neither can drift from the other.
/// </summary>
public sealed class HostSnippetTests
{
    private static async Task<(GenerationResult Result, ImageGenerationResponse Response, string Plan)> RunSnippetAsync(string[] args)
    {
        // README-SNIPPET-BEGIN
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddZImage(o =>
        {
            o.ModelDirectory = null;                       // a diffusers folder, e.g. "/models/Z-Image-Turbo"; null = tiny random demo model
            o.AllocatorSettings = "max_split_size_mb:128"; // PYTORCH_CUDA_ALLOC_CONF syntax
            o.Budget.Buffer = "0.7GiB";
        }).AddZImageImageGenerator();
        builder.Services.AddHealthChecks().AddZImageHealthCheck();
        using var host = builder.Build();
        await host.StartAsync();                            // ZImageHostedService loads the model and measures the carve-up

        var pipeline = host.Services.GetRequiredService<IImagePipeline>();
        var request = new GenerationRequest { Prompt = "a lighthouse at dusk", Width = 64, Height = 64, Steps = 2, Seed = 1 };
        MemoryPlan plan = pipeline.Plan(request);           // exact per-stage peaks, before anything runs
        Console.WriteLine(plan.Describe());
        var progress = new Progress<GenerationProgress>(p => Console.WriteLine($"{p.Stage} {p.Step}/{p.TotalSteps}"));
        GenerationResult result = await pipeline.GenerateAsync(request, progress);
        await result.SavePngAsync("out/lighthouse.png");    // PNG with the parameters in text chunks

        // The same pipeline as a Microsoft.Extensions.AI image generator (MEAI001: experimental).
        IImageGenerator generator = host.Services.GetRequiredService<IImageGenerator>();
        ImageGenerationResponse response = await generator.GenerateImagesAsync("a lighthouse at dusk",
            new ImageGenerationOptions { ImageSize = new Size(64, 64), AdditionalProperties = new() { ["steps"] = 2, ["seed"] = 1L } });
        var png = (DataContent)response.Contents[0];         // image/png
        // README-SNIPPET-END
        await host.StopAsync();
        Assert.Equal("image/png", png.MediaType);
        return (result, response, plan.Describe());
    }

    [Fact]
    public async Task ReadmeHostSnippet_RunsAsWritten()
    {
        var (result, response, plan) = await RunSnippetAsync([]);
        Assert.StartsWith("fits", plan, StringComparison.Ordinal);
        Assert.True(File.Exists("out/lighthouse.png"));
        Assert.Equal(("a lighthouse at dusk", 64, 64, 1L), (result.Parameters.Prompt, result.Parameters.Width, result.Parameters.Height, result.Seed));
        // Same request, same seed: the generator's PNG carries the same pixels' parameters.
        var p = PngMetadata.ReadParameters(((DataContent)response.Contents[0]).Data.ToArray())!;
        Assert.Equal((2, 1L, 64), (p.Steps, p.Seed, p.Width));
    }

    [Theory]
    [InlineData("README.md")]
    [InlineData("nuget/README.md")]
    public void Readme_ShowsTheSnippetExactly(string readmePath)
    {
        string source = File.ReadAllText(Path.Combine(FixturePaths.RepoRoot, "tests", "ZImage.Server.Tests", "HostSnippetTests.cs"));
        string snippet = Dedent(Between(source, "// README-SNIPPET-BEGIN\n", "        // README-SNIPPET-END"));
        string readme = File.ReadAllText(Path.Combine(FixturePaths.RepoRoot, readmePath)).Replace("\r\n", "\n", StringComparison.Ordinal);
        Assert.Contains("```csharp\n" + snippet + "```", readme, StringComparison.Ordinal);
    }

    private static string Between(string s, string begin, string end)
    {
        s = s.Replace("\r\n", "\n", StringComparison.Ordinal);
        int i = s.IndexOf(begin, StringComparison.Ordinal) + begin.Length;
        return s[i..s.IndexOf(end, i, StringComparison.Ordinal)];
    }

    private static string Dedent(string block) =>
        string.Concat(block.Split('\n').Select(l => (l.StartsWith("        ", StringComparison.Ordinal) ? l[8..] : l.TrimStart()) + "\n")).TrimEnd('\n') + "\n";
}
