using Xunit.Abstractions;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Vae;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Vae;

/// <summary>
/// Every <c>vae_decode_tiled</c> case of the edit references (or of <c>ZIMAGE_EDIT_REFERENCE_DIR</c>): the tiny VAE's
/// tiled decode reproduces diffusers' <c>AutoencoderKL.tiled_decode</c> (tile grid, in-place blend_v/blend_h, crop)
/// within the manifest tolerance (the untiled image is the existing vae_decode parity's job), and the planner's peak
/// equals the real one.
/// </summary>
[Collection(ComputeCollection.Name)]
[Trait("Category", "Parity")]
public sealed class VaeTiledDecodeParityTests(ComputeFixture fixture, ITestOutputHelper output)
{
    public static TheoryData<string> Cases => EditReferenceManifest.Names("vae_decode_tiled");

    private static VaeTileSettings SettingsOf(ReferenceCase c) =>
        new(c.Param<int>("tile_sample_min_size"), c.Param<int>("tile_latent_min_size"), 8, c.Param<double>("tile_overlap_factor"));

    [Theory]
    [MemberData(nameof(Cases))]
    public void TileGridAndBlendSizesAreDiffusers(string caseName)
    {
        var c = EditReferenceManifest.Get(caseName);
        var tiles = SettingsOf(c);
        int[] hw = c.Param<int[]>("latent_hw");
        Assert.Equal(c.Param<int>("latent_stride"), tiles.LatentStride);
        Assert.Equal(c.Param<int>("blend_extent"), tiles.BlendExtent);
        Assert.Equal(c.Param<int>("row_limit"), tiles.RowLimit);
        Assert.Equal(c.Param<int[]>("tile_rows"), tiles.Origins(hw[0]));
        Assert.Equal(c.Param<int[]>("tile_cols"), tiles.Origins(hw[1]));
        Assert.True(tiles.Tiles(hw[0], hw[1]));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TiledDecodeMatchesDiffusersTiledDecode(string caseName)
    {
        var c = EditReferenceManifest.Get(caseName);
        var expected = c.LoadFloat("image_tiled");
        double tolerance = c.ToleranceFor("image_tiled").RecommendedMaxAbs;

        using var host = TinyModelHost.Real(fixture, f => f.Vae, TensorDType.F32);
        var decoder = new VaeDecoder(host.Config.Vae, host.Weights, host.Compute);
        long weightBytes = host.Allocator.GetStatistics().AllocatedBytes.Current;
        host.Allocator.ResetPeakStats();
        using var latents = host.Upload(c.LoadFloat("latents"));
        int liveBefore = host.Recorder.LiveCount;

        using (var image = decoder.Decode(latents, SettingsOf(c)))
        {
            Assert.Equal(expected.Shape[1..], image.Shape);
            double maxAbs = TensorAssert.Close(expected, host.Download(image), tolerance);
            output.WriteLine($"{caseName}: tiled max|Δ| = {maxAbs:E3} (tolerance {tolerance:E2})");
            // Tiling really changes the output (the manifest's max |tiled − untiled| is about 1), so an untiled
            // decode could not pass the bound above.
            Assert.True(c.Param<double>("max_abs_tiled_minus_untiled") > 100 * tolerance);
        }

        Assert.Equal(liveBefore, host.Recorder.LiveCount);
        Assert.Equal(c.LoadFloat("latents").Data, host.Download(latents));
        // The planner's figure is the real peak (weights excluded, the input latents included).
        long realPeak = host.Allocator.GetStatistics().AllocatedBytes.Peak - weightBytes;
        int[] hw = c.Param<int[]>("latent_hw");
        Assert.Equal(realPeak, VaeTilingPlanner.PlanDecodePeakBytes(host.Config.Vae, hw[0], hw[1], SettingsOf(c), TensorDType.F32));
    }

    [Fact]
    public void LatentWithinOneTileDecodesUntiled()
    {
        // diffusers tiles only when a side exceeds tile_latent_min_size: a 8×8 latent with 8-latent tiles is one decode.
        using var host = TinyModelHost.Planning(TensorDType.F32);
        var decoder = new VaeDecoder(host.Config.Vae, host.Weights, host.Compute);
        using var z = host.Compute.Empty(AllocationTags.Latents, host.Config.Vae.LatentChannels, 8, 8);
        var tiles = VaeTileSettings.FromSampleSize(64);
        Assert.False(tiles.Tiles(8, 8));
        int before = host.Recorder.Events.Count;
        using (decoder.Decode(z)) { }
        int untiled = host.Recorder.Events.Count - before;
        before = host.Recorder.Events.Count;
        using (decoder.Decode(z, tiles)) { }
        Assert.Equal(untiled, host.Recorder.Events.Count - before);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void TileBelowTheLatentMinimumIsRejected(int tileLatents)
    {
        var ex = Assert.Throws<VaeTileSizeException>(() => new VaeTileSettings(tileLatents * 8, tileLatents, 8));
        Assert.Equal("tileLatentMinSize", ex.ParamName);
        Assert.Equal(tileLatents, ex.ActualValue);
        Assert.Contains($"allowed {VaeTileSettings.MinTileLatentSize} latents", ex.Message);
    }

    [Fact]
    public void InconsistentTileSettingsAreRejected()
    {
        // 6 latents at overlap 0.25: a 36 px crop but a 32 px stride, so the image would come out the wrong size.
        Assert.Contains("multiple of 4", Assert.Throws<VaeTileSizeException>(() => new VaeTileSettings(48, 6, 8)).Message);
        Assert.Equal("tileSampleMinSize", Assert.Throws<VaeTileSizeException>(() => new VaeTileSettings(60, 8, 8)).ParamName);
        Assert.Equal("tileSampleMinSize", Assert.Throws<VaeTileSizeException>(() => VaeTileSettings.FromSampleSize(60)).ParamName);
        Assert.Equal("overlapFactor", Assert.Throws<VaeTileSizeException>(() => new VaeTileSettings(64, 8, 8, 1.0)).ParamName);
        using var host = TinyModelHost.Planning(TensorDType.F32);
        var decoder = new VaeDecoder(host.Config.Vae, host.Weights, host.Compute);
        using var z = host.Compute.Empty(AllocationTags.Latents, host.Config.Vae.LatentChannels, 12, 12);
        Assert.Throws<VaeTileSizeException>(() => decoder.Decode(z, new VaeTileSettings(32, 8, 4)));
        Assert.Equal(0, host.Recorder.Events.Count(e => e.Tag == AllocationTags.Vae));
    }

    [Fact]
    public void AutoTilesOnlyWhenTheUntiledPlanDoesNotFit()
    {
        var config = Runtime.Models.Configuration.ZImageConfig.Load(FixturePaths.TinyCheckpoint).Vae;
        const int h = 24, w = 20;
        long untiled = VaeTilingPlanner.PlanDecodePeakBytes(config, h, w, null);

        var roomy = VaeTilingPlanner.Choose(VaeTiling.Auto, config, h, w, untiled);
        Assert.False(roomy.Tiled);
        Assert.True(roomy.Fits);
        Assert.Equal(untiled, roomy.PlannedPeakBytes);

        var tight = VaeTilingPlanner.Choose(VaeTiling.Auto, config, h, w, untiled - 1);
        Assert.True(tight.Tiled);
        Assert.True(tight.Fits);
        Assert.True(tight.PlannedPeakBytes <= untiled - 1);
        Assert.Equal(tight.PlannedPeakBytes, VaeTilingPlanner.PlanDecodePeakBytes(config, h, w, tight.Tiles));
        output.WriteLine($"untiled {untiled} B; auto at {untiled - 1} B: {tight.Tiles!.TileSampleMinSize} px tiles, {tight.PlannedPeakBytes} B ({tight.Reason})");

        var none = VaeTilingPlanner.Choose(VaeTiling.Auto, config, h, w, 0);
        Assert.False(none.Fits);
        Assert.Equal(VaeTileSettings.MinTileLatentSize, none.Tiles!.TileLatentMinSize);

        Assert.False(VaeTilingPlanner.Choose(VaeTiling.Off, config, h, w, 0).Tiled);
        Assert.True(VaeTilingPlanner.Choose(VaeTiling.On, config, h, w, long.MaxValue).Tiled);
        Assert.Throws<ArgumentOutOfRangeException>(() => VaeTilingPlanner.Choose((VaeTiling)7, config, h, w, 0));
    }
}
