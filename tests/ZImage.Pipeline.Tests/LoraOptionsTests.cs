using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Models.Lora;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary><see cref="ZImageOptions.Loras"/>: bound from configuration (<c>ZImage:Loras:i:Path/Scale</c>) and validated at start.</summary>
public sealed class LoraOptionsTests
{
    private static string FixtureLora => Path.Combine(FixturePaths.PublicLoraFixtures, "lora_diffusers.safetensors");
    private static string Kohya => Path.Combine(FixturePaths.PublicLoraFixtures, "lora_kohya.safetensors");

    [Fact]
    public void LorasBindFromAConfigurationSectionInOrder()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ZImage:Loras:0:Path"] = FixtureLora,
            ["ZImage:Loras:0:Scale"] = "0.8",
            ["ZImage:Loras:1:Path"] = Kohya,
        }).Build();
        var services = new ServiceCollection();
        services.AddZImage(config.GetSection("ZImage"));
        using var sp = services.BuildServiceProvider();
        var o = sp.GetRequiredService<IOptions<ZImageOptions>>().Value;
        Assert.Equal([new LoraSpec(FixtureLora, 0.8), new LoraSpec(Kohya, 1.0)], o.Loras);
    }

    [Fact]
    public void ValidatorNamesEachBadLoraAndTheAllowedValues()
    {
        var options = new ZImageOptions { Loras = [new LoraSpec(FixtureLora, 0.5), new LoraSpec("missing.safetensors"), new LoraSpec(FixtureLora, double.NaN), new LoraSpec("")] };
        var result = new ZImageOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        var failures = result.Failures!.ToArray();
        Assert.Equal(3, failures.Length);
        Assert.Contains(failures, f => f.StartsWith("ZImage:Loras:1 ", StringComparison.Ordinal) && f.Contains("'missing.safetensors' does not exist", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("ZImage:Loras:2 ", StringComparison.Ordinal) && f.Contains("Scale = NaN", StringComparison.Ordinal) && f.Contains("a finite number", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("ZImage:Loras:3 ", StringComparison.Ordinal) && f.Contains("Path is empty", StringComparison.Ordinal));
    }
}
