using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Pipeline.Tests;

/// <summary>
/// <see cref="TwoStageGeneration"/>: explore small, finish the same seed large through img2img, planned exactly
/// (the combined plan's stages are both passes' measured peaks); its request checks; the bilinear upscale.
/// </summary>
public sealed class TwoStageGenerationTests
{
    private static TwoStageRequest Small(GenerationRequest? r = null) => new()
    {
        Request = r ?? new GenerationRequest { Prompt = "a lighthouse", Width = 32, Height = 32, Steps = 1, Seed = 5 },
    };

    [Fact]
    public async Task ExploresSmallThenRefinesTheSameSeedLargeAndThePlanIsBothPassesMeasuredPeaks()
    {
        var options = TestPipelines.Options(o =>
        {
            o.Device = DevicePreference.Cpu;
            o.ImageEditing = true;
            o.Budget.SizingWidth = 32;
            o.Budget.SizingHeight = 32;
        });
        using var pipeline = new ImagePipeline(ZImageEngineFactory.Create(options), options);
        var request = Small();

        var result = await pipeline.GenerateAsync(request);

        var explore = result.Explore.Parameters;
        var refine = result.Refine.Parameters;
        Assert.Equal((16, 16, 5L, (float?)null), (explore.Width, explore.Height, explore.Seed, explore.Strength));
        Assert.Equal((32, 32, 5L, (float?)TwoStageRequest.DefaultRefineStrength), (refine.Width, refine.Height, refine.Seed, refine.Strength));
        Assert.Equal((16, 16), (result.Explore.Images[0].Width, result.Explore.Images[0].Height));
        Assert.Equal((32, 32), (result.Refine.Images[0].Width, result.Refine.Images[0].Height));
        // Strength 0.5 of 1 step: t_start = int(1 − 0.5) = 0, so the refine runs its one step after encoding the upscaled image.
        Assert.Equal(["text-encoder", "vae-encode", "denoise-step-1", "vae-decode"], result.Refine.Stages.Select(s => s.Name));

        ReferenceOutputs.AssertPlannedEqualsMeasured("explore", result.Explore);
        ReferenceOutputs.AssertPlannedEqualsMeasured("refine", result.Refine);
        var measured = result.Explore.Stages.Select(s => (TwoStageGeneration.ExplorePrefix + s.Name, s.MeasuredPeakBytes))
            .Concat(result.Refine.Stages.Select(s => (TwoStageGeneration.RefinePrefix + s.Name, s.MeasuredPeakBytes)));
        Assert.Equal(measured, result.Plan.Stages.Select(s => (s.Name, s.PeakBytes)));
        Assert.Equal(result.Explore.Stages.Concat(result.Refine.Stages).Max(s => s.MeasuredPeakBytes), result.Plan.RequestPeakBytes);
        Assert.True(result.Plan.Fits, result.Plan.Describe());
        Assert.Equal(result.Plan.Stages, pipeline.Plan(request).Stages);
    }

    public static TheoryData<TwoStageRequest, string> BadRequests()
    {
        var ok = new GenerationRequest { Prompt = "x", Width = 64, Height = 64 };
        return new()
        {
            { Small(ok with { Width = null }), nameof(GenerationRequest.Width) },
            { Small(ok with { Height = null }), nameof(GenerationRequest.Height) },
            { Small(ok with { InitImage = new RgbImage(64, 64, new byte[64 * 64 * 3]) }), nameof(GenerationRequest.InitImage) },
            { Small(ok with { Strength = 0.5f }), nameof(GenerationRequest.InitImage) },
            { Small(ok with { NumImages = 2 }), nameof(GenerationRequest.NumImages) },
            { Small(ok with { InitialLatents = new LatentTensor(new float[16 * 8 * 8], [1, 16, 8, 8]) }), nameof(GenerationRequest.InitialLatents) },
            { Small(ok) with { RefineStrength = 0f }, nameof(TwoStageRequest.RefineStrength) },
            { Small(ok) with { RefineStrength = 1.5f }, nameof(TwoStageRequest.RefineStrength) },
            { Small(ok) with { RefineStrength = float.NaN }, nameof(TwoStageRequest.RefineStrength) },
            { Small(ok) with { ExploreWidth = 128 }, nameof(TwoStageRequest.ExploreWidth) },
            { Small(ok) with { ExploreHeight = 24 }, nameof(TwoStageRequest.ExploreHeight) },
        };
    }

    [Theory]
    [MemberData(nameof(BadRequests))]
    public void BadTwoStageRequestsAreTypedErrorsNamingTheField(TwoStageRequest request, string field) =>
        Assert.Equal(field, Assert.Throws<InvalidGenerationRequestException>(() => TwoStageGeneration.ExploreRequest(request)).ParamName);

    [Fact]
    public void ExploreSizeDefaultsToHalfRoundedToSixteen()
    {
        var (explore, w, h) = TwoStageGeneration.ExploreRequest(Small(new GenerationRequest { Prompt = "x", Width = 1024, Height = 720 }));
        Assert.Equal((512, 352, 1024, 720), (explore.Width!.Value, explore.Height!.Value, w, h));
        Assert.NotNull(explore.Seed);
    }

    [Fact]
    public void UpscaleIsBilinearWithHalfPixelCentres()
    {
        // Two pixels [0, 255] to four: samples at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) → 0, 63.75, 191.25, 255.
        var src = new RgbImage(2, 1, [0, 0, 0, 255, 255, 255]);
        var up = TwoStageGeneration.Upscale(src, 4, 2);
        Assert.Equal(new byte[] { 0, 64, 191, 255 }, Enumerable.Range(0, 4).Select(x => up.Pixels[x * 3]).ToArray());
        Assert.Equal(up.Pixels[..12], up.Pixels[12..]);
        var flat = TwoStageGeneration.Upscale(new RgbImage(3, 3, Enumerable.Repeat((byte)77, 27).ToArray()), 7, 5);
        Assert.All(flat.Pixels, v => Assert.Equal(77, v));
    }
}
