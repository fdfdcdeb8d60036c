using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

public partial class RequestGuardTests
{
    private static ResolvedRequest Resolve(GenerationRequest r, Action<ZImageOptions>? configure = null) =>
        RequestResolver.Resolve(r, TestPipelines.Options(configure), demoModel: false, modelName: "m", seedSource: () => 99);

    [Theory]
    [InlineData(GenerationMode.Turbo, 8, 0f)]
    [InlineData(GenerationMode.Standard, 25, 4f)]
    [InlineData(GenerationMode.Quality, 50, 5f)]
    public void ModePresetsSetStepsAndGuidance(GenerationMode mode, int steps, float guidance)
    {
        var p = Resolve(new GenerationRequest { Prompt = "x", Mode = mode }).Parameters;
        Assert.Equal((mode, steps, guidance), (p.Mode, p.Steps, p.Guidance));
    }

    [Fact]
    public void PresetsAreConfigurable()
    {
        var p = Resolve(new GenerationRequest { Prompt = "x", Mode = GenerationMode.Quality }, o => o.Presets.Quality = new() { Steps = 30, Guidance = 3.5f }).Parameters;
        Assert.Equal((30, 3.5f), (p.Steps, p.Guidance));
    }

    [Theory]
    [InlineData(ResolutionPreset.Square512, 512, 512)]
    [InlineData(ResolutionPreset.Square768, 768, 768)]
    [InlineData(ResolutionPreset.Square1024, 1024, 1024)]
    [InlineData(ResolutionPreset.Landscape16x9, 1024, 576)]
    [InlineData(ResolutionPreset.Portrait9x16, 576, 1024)]
    public void ResolutionPresetsAreMultiplesOf16(ResolutionPreset preset, int w, int h)
    {
        var p = Resolve(new GenerationRequest { Prompt = "x", Resolution = preset }).Parameters;
        Assert.Equal((w, h), (p.Width, p.Height));
        Assert.Equal(0, p.Width % 16 + p.Height % 16);
    }

    [Fact]
    public void ExplicitValuesOverridePresets()
    {
        var p = Resolve(new GenerationRequest { Prompt = "x", Mode = GenerationMode.Standard, Steps = 12, Guidance = 2f, Resolution = ResolutionPreset.Square512, Width = 256 }).Parameters;
        Assert.Equal((12, 2f, 256, 512), (p.Steps, p.Guidance, p.Width, p.Height));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(51)]
    public void OutOfRangeStepsAreRejectedNamingValueAndRange(int steps)
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", Steps = steps }, o => o.Limits.OutOfRange = OutOfRangePolicy.Reject));
        Assert.Equal("Steps", e.ParamName);
        Assert.Contains($"Steps = {steps}", e.Message);
        Assert.Contains("1..50", e.Message);
    }

    [Theory]
    [InlineData(-0.5f)]
    [InlineData(7.5f)]
    [InlineData(float.NaN)]
    public void OutOfRangeGuidanceIsRejectedNamingValueAndRange(float g)
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", Guidance = g }, o => o.Limits.OutOfRange = OutOfRangePolicy.Reject));
        Assert.Equal("Guidance", e.ParamName);
        Assert.Contains("0..7", e.Message);
    }

    [Fact]
    public void ResetToStandardRunsStandardWithAWarning()
    {
        var r = Resolve(new GenerationRequest { Prompt = "x", Mode = GenerationMode.Turbo, Steps = 80 }, o => o.Limits.OutOfRange = OutOfRangePolicy.ResetToStandard);
        Assert.True(r.StepsOrGuidanceReset);
        Assert.Equal((GenerationMode.Standard, 25, 4f), (r.Parameters.Mode, r.Parameters.Steps, r.Parameters.Guidance));
        Assert.Contains(r.Warnings, w => w.Contains("steps 80 is outside 1..50") && w.Contains("Standard"));
    }

    [Fact]
    public void ConfiguredLimitsApply()
    {
        var r = Resolve(new GenerationRequest { Prompt = "x", Steps = 60 }, o => { o.Limits.MaxSteps = 60; o.Limits.OutOfRange = OutOfRangePolicy.Reject; });
        Assert.Equal(60, r.Parameters.Steps);
    }

    [Theory]
    [InlineData(100, 64)]
    [InlineData(64, 8)]
    [InlineData(4096, 64)]
    public void DimensionsMustBeMultiplesOf16InRange(int w, int h)
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", Width = w, Height = h }));
        Assert.Contains("multiple of 16 in 16..2048", e.Message);
        Assert.Contains(w % 16 != 0 || w > 2048 ? $"Width = {w}" : $"Height = {h}", e.Message);
    }

    [Fact]
    public void ImageCountIsBounded()
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", NumImages = 5 }));
        Assert.Contains("NumImages = 5", e.Message);
        Assert.Contains("1..4", e.Message);
    }

    [Fact]
    public void InitialLatentsMustMatchTheSize()
    {
        var lat = new LatentTensor(new float[16 * 4 * 4], [1, 16, 4, 4]);
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", Width = 64, Height = 64, InitialLatents = lat }));
        Assert.Contains("[1,16,8,8]", e.Message);
    }

    [Theory]
    [InlineData(-1f, 0f)]
    [InlineData(1f, -2f)]
    public void CfgTruncationAndNormalizationMustBeNonNegative(float truncation, float normalization)
    {
        Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", CfgTruncation = truncation, CfgNormalization = normalization }));
    }

    [Fact]
    public void MissingSeedIsDrawnAndReported()
    {
        Assert.Equal(99, Resolve(new GenerationRequest { Prompt = "x" }).Parameters.Seed);
    }

    [Fact]
    public void NegativePromptIsDroppedWithoutGuidance()
    {
        var r = Resolve(new GenerationRequest { Prompt = "x", NegativePrompt = "blurry" });
        Assert.Null(r.Parameters.NegativePrompt);
        Assert.Contains(r.Warnings, w => w.Contains("negative prompt is ignored"));
        Assert.Equal("", Resolve(new GenerationRequest { Prompt = "x", Mode = GenerationMode.Standard }).Parameters.NegativePrompt);
    }
}
