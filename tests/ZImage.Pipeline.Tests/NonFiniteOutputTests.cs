using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>NaN weights fail the generation with a typed error naming the stage, instead of a black PNG; nothing stays allocated.</summary>
public class NonFiniteOutputTests
{
    [Theory]
    [InlineData("transformer/diffusion_pytorch_model-00002-of-00002.safetensors", "layers.1.attention.to_out.0.weight", NonFiniteOutputException.DenoiseStage)]
    [InlineData("vae/diffusion_pytorch_model.safetensors", "decoder.conv_out.bias", GenerationRunner.VaeStage)]
    public async Task NaNWeightsFailTheGenerationNamingTheStage(string file, string tensor, string stage)
    {
        using var checkpoint = TempCheckpoint.CopyOfTiny();
        checkpoint.PoisonWithNaN(file, tensor);
        var options = TestPipelines.Options(o => { o.Budget.DeviceMemory = "4GiB"; o.Budget.SizingWidth = 32; o.Budget.SizingHeight = 32; });
        var engine = ZImageEngine.Open(checkpoint.Dir, new ZImageEngineOptions { ForceCpu = true, WeightDType = Runtime.Compute.TensorDType.F32 });
        using var pipeline = new ImagePipeline(engine, options);
        await pipeline.StartAsync();
        long baseline = engine.GetMemoryStats().AllocatedBytes;

        var e = await Assert.ThrowsAsync<NonFiniteOutputException>(() =>
            pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 32, Height = 32, Steps = 1, Seed = 1 }));
        Assert.Equal(stage, e.Stage);
        Assert.True(e.Count > 0);
        Assert.Contains($"The {stage} stage produced", e.Message);
        Assert.Equal(baseline, engine.GetMemoryStats().AllocatedBytes);
    }

    [Fact]
    public void TheCheckPassesFiniteValuesAndCountsEveryNonFiniteOne()
    {
        NonFiniteOutputException.ThrowIfNonFinite([0f, -1e38f, 3f], "s", "w");
        var e = Assert.Throws<NonFiniteOutputException>(() => NonFiniteOutputException.ThrowIfNonFinite([1f, float.PositiveInfinity, 2f, float.NaN], "s", "w"));
        Assert.Equal((2L, 1L), (e.Count, e.FirstIndex));
    }
}
