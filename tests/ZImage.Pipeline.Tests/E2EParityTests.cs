using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>
/// The manifest's e2e cases through the public API: given prompt and initial latents, the prompt embeddings, every
/// step's model outputs (and guided prediction) and latents, the final latents, the float decode and the uint8 image
/// all match the reference within the manifest's tolerances.
/// </summary>
[Trait("Category", "Parity")]
public class E2EParityTests
{
    public static TheoryData<string> Cases => ReferenceCases.Names("e2e");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ImageMatchesTheReference(string name)
    {
        var c = ReferenceCases.Get(name);
        int h = c.Param<int>("H"), w = c.Param<int>("W"), steps = c.Param<int>("num_inference_steps");
        float g = c.Param<float>("guidance_scale");
        string prompt = c.Param<string>("prompt");
        string? negative = c.Params.TryGetProperty("negative_prompt", out var n) && n.ValueKind == System.Text.Json.JsonValueKind.String ? n.GetString() : null;
        var latents = c.LoadFloat("initial_latents");
        var expected = c.LoadBytes("image_uint8");
        var tol = c.ToleranceFor("image_uint8");

        var options = TestPipelines.Options(o =>
        {
            o.ModelDirectory = FixturePaths.TinyCheckpoint;
            o.Device = DevicePreference.Cpu;
            o.WeightDType = Runtime.Compute.TensorDType.F32;
            o.Budget.DeviceMemory = "4GiB";
        });
        var capture = new CapturingEngine((ZImageEngine)ZImageEngineFactory.Create(options));
        using var pipeline = new ImagePipeline(capture, options);
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = prompt,
            NegativePrompt = negative,
            Width = w,
            Height = h,
            Steps = steps,
            Guidance = g,
            Mode = g > 0 ? GenerationMode.Standard : GenerationMode.Turbo,
            InitialLatents = new LatentTensor(latents.Data, latents.Shape),
        });

        // Every intermediate the manifest records, whole, within its own tolerance (recommended_max_abs, never loosened).
        var errors = new List<string>();
        void Compare(string refName, float[]? ours)
        {
            var expected = c.LoadFloat(refName);
            double tolerance = c.ToleranceFor(refName).RecommendedMaxAbs;
            if (ours is null || ours.Length != expected.Data.Length)
            {
                errors.Add($"{refName}: {ours?.Length.ToString() ?? "nothing"} values captured, reference has {expected.Data.Length}");
                return;
            }
            double max = 0;
            for (int i = 0; i < ours.Length; i++) max = Math.Max(max, Math.Abs((double)ours[i] - expected.Data[i]));
            if (!(max <= tolerance)) errors.Add($"{refName}: max |diff| {max:G3} > {tolerance:G3}");
        }
        bool cfg = g > 0;
        Assert.Equal(cfg ? 2 : 1, capture.Embeddings.Count);
        Compare("prompt_embeds", capture.Embeddings[0]);
        if (cfg) Compare("negative_prompt_embeds", capture.Embeddings[1]);
        Assert.Equal(steps * (cfg ? 2 : 1), capture.Predictions.Count);
        Assert.Equal(steps, capture.LatentsAfterStep.Count);
        for (int i = 0; i < steps; i++)
        {
            if (cfg)
            {
                Compare($"step.{i}.model_out_pos", capture.Predictions[2 * i]);
                Compare($"step.{i}.model_out_neg", capture.Predictions[2 * i + 1]);
                Compare($"step.{i}.guided_pred", capture.Guided[i]);
            }
            else
                Compare($"step.{i}.model_out", capture.Predictions[i]);
            Compare($"step.{i}.latents_after", capture.LatentsAfterStep[i]);
        }
        Compare("final_latents", capture.FinalLatents);
        Compare("decoded", capture.Decoded);
        Assert.True(errors.Count == 0, $"{name}:{Environment.NewLine}{string.Join(Environment.NewLine, errors)}");

        var actual = Assert.Single(result.Images).Pixels;
        Assert.Equal(expected.Data.Length, actual.Length);
        int differing = 0, maxDiff = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            int d = Math.Abs(actual[i] - expected.Data[i]);
            if (d > 0) differing++;
            maxDiff = Math.Max(maxDiff, d);
        }
        Assert.True(maxDiff <= tol.RecommendedMaxAbs, $"{name}: max |diff| {maxDiff} > {tol.RecommendedMaxAbs}");
        Assert.True(differing <= (tol.MaxFractionDiffering ?? 0.01) * actual.Length, $"{name}: {differing} of {actual.Length} values differ");
    }

    [Fact]
    public void ScheduleMatchesTheReferenceSigmasAndModelTimes()
    {
        foreach (var c in ReferenceCases.OfKind("e2e"))
        {
            var sigmas = c.LoadFloat("sigmas").Data;
            var engine = ZImageEngine.CreatePlanning(TinyZImageConfig.Config, 1L << 30);
            var ours = engine.Sigmas(sigmas.Length - 1);
            for (int i = 0; i < sigmas.Length; i++) Assert.True(Math.Abs(ours[i] - sigmas[i]) <= 1e-6, $"{c.Name} sigma {i}: {ours[i]} vs {sigmas[i]}");
            for (int i = 0; i < sigmas.Length - 1; i++)
            {
                float t = c.LoadFloat($"step.{i}.t_model").Data[0];
                Assert.True(Math.Abs(engine.ModelTime(ours[i]) - t) <= 1e-6, $"{c.Name} t_model {i}");
            }
        }
    }
}
