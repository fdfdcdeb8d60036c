using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

/// <summary>Guards added by the hardening pass: text, seeds, latents, and the out-of-range default.</summary>
public partial class RequestGuardTests
{
    // Built at run time: attribute arguments are stored as UTF-8, which would turn a lone surrogate into U+FFFD.
    [Theory]
    [InlineData(0, "Prompt", 1)]
    [InlineData(1, "NegativePrompt", 3)]
    public void ALoneSurrogateInThePromptIsRejectedNamingTheParameterAndTheIndex(int caseIndex, string parameter, int index)
    {
        var (prompt, negative) = caseIndex == 0 ? ("a\uD800b", (string?)null) : ("fine", "bad\uDC00");
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = prompt, NegativePrompt = negative, Mode = GenerationMode.Standard }));
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains($"UTF-16 index {index}", e.Message);
        Assert.Contains("well-formed UTF-16", e.Message);
    }

    [Fact]
    public void AnEmojiPromptIsAccepted() =>
        Assert.Equal("sun \uD83C\uDF05", Resolve(new GenerationRequest { Prompt = "sun \uD83C\uDF05" }).Parameters.Prompt);

    [Fact]
    public void ASeedWhoseLastImageWouldOverflowIsRejectedNamingTheRange()
    {
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", Seed = long.MaxValue, NumImages = 2 }));
        Assert.Equal("Seed", e.ParamName);
        Assert.Contains("9223372036854775806", e.Message);
        Assert.Contains("seed + i", e.Message);
        Assert.Equal(long.MaxValue - 1, Resolve(new GenerationRequest { Prompt = "x", Seed = long.MaxValue - 1, NumImages = 2 }).Parameters.Seed);
        Assert.Equal(long.MaxValue, Resolve(new GenerationRequest { Prompt = "x", Seed = long.MaxValue }).Parameters.Seed);
        Assert.Equal(long.MinValue, Resolve(new GenerationRequest { Prompt = "x", Seed = long.MinValue, NumImages = 4 }).Parameters.Seed);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void NonFiniteInitialLatentsAreRejectedNamingTheIndex(float bad)
    {
        var data = new float[16 * 4 * 4];
        data[37] = bad;
        var e = Assert.Throws<InvalidGenerationRequestException>(() =>
            Resolve(new GenerationRequest { Prompt = "x", Width = 32, Height = 32, InitialLatents = new LatentTensor(data, [1, 16, 4, 4]) }));
        Assert.Equal("InitialLatents", e.ParamName);
        Assert.Contains("flat index 37", e.Message);
        Assert.Contains("finite", e.Message);
    }

    [Fact]
    public void LatentShapeIsACopyTheCallerCannotChangeAfterValidation()
    {
        int[] shape = [1, 16, 4, 4];
        var latents = new LatentTensor(new float[256], shape);
        shape[2] = 400;
        Assert.Equal([1, 16, 4, 4], latents.Shape);
        Assert.False(latents.Shape is int[], "Shape must not hand out a mutable array");
        Assert.True(Resolve(new GenerationRequest { Prompt = "x", Width = 32, Height = 32, InitialLatents = latents }).Parameters.InitialLatentsGiven);
    }

    [Theory]
    [InlineData(1000, null, "Steps", "1..50")]
    [InlineData(null, 9f, "Guidance", "0..7")]
    public void OutOfRangeStepsOrGuidanceAreRejectedByDefault(int? steps, float? guidance, string parameter, string range)
    {
        Assert.Equal(OutOfRangePolicy.Reject, new ZImageOptions().Limits.OutOfRange);
        var e = Assert.Throws<InvalidGenerationRequestException>(() => Resolve(new GenerationRequest { Prompt = "x", Steps = steps, Guidance = guidance }));
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(range, e.Message);
    }

    [Fact]
    public void PlanningOneThousandStepsIsRefusedByDefaultInsteadOfPlanningStandard()
    {
        using var pipeline = TestPipelines.Create(new FakeEngine());
        var e = Assert.Throws<InvalidGenerationRequestException>(() => pipeline.Plan(TestPipelines.Small() with { Steps = 1000 }));
        Assert.Contains("Steps = 1000", e.Message);
        Assert.Contains("1..50", e.Message);
    }
}
