using Xunit.Abstractions;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>
/// The edit references' <c>img2img_e2e</c> and <c>inpaint_e2e</c> cases through the public API
/// (<see cref="GenerationRequest.InitImage"/>, <see cref="GenerationRequest.Strength"/>,
/// <see cref="GenerationRequest.Mask"/>) with the stored random draws: every output tensor the manifest lists is
/// compared, each with its own tolerance: prompt embeddings, the preprocessed image and mask, the schedule, the
/// encoded and noised latents, every step's model output (and CFG halves), denoised and blended latents, the final
/// latents, the decoder input, the decoded image and the uint8 image.
/// </summary>
[Trait("Category", "Parity")]
public sealed class ImageEditParityTests(ITestOutputHelper output)
{
    // Computed by diffusers but never used by its loop (only its RNG draw order matters): nothing here produces it.
    private static readonly HashSet<string> NotProduced = new(StringComparer.Ordinal) { "masked_image" };

    public static TheoryData<string> Img2ImgCases => EditReferenceManifest.Names("img2img_e2e");
    public static TheoryData<string> InpaintCases => EditReferenceManifest.Names("inpaint_e2e");

    [Theory]
    [MemberData(nameof(Img2ImgCases))]
    public Task Img2ImgIntermediatesMatchTheReference(string name) => RunCase(name, masked: false);

    [Theory]
    [MemberData(nameof(InpaintCases))]
    public Task InpaintIntermediatesMatchTheReference(string name) => RunCase(name, masked: true);

    private async Task RunCase(string name, bool masked)
    {
        var c = EditReferenceManifest.Get(name);
        int h = c.Param<int>("H"), w = c.Param<int>("W"), steps = c.Param<int>("num_inference_steps");
        float g = c.Param<float>("guidance_scale"), strength = c.Param<float>("strength");
        string prompt = c.Param<string>("prompt");
        string? negative = c.Params.TryGetProperty("negative_prompt", out var n) && n.ValueKind == System.Text.Json.JsonValueKind.String ? n.GetString() : null;
        var init = new RgbImage(w, h, c.LoadBytes("init_image_uint8").Data);
        var mask = masked ? new MaskImage(w, h, c.LoadBytes("mask_uint8").Data) : null;
        var eps = c.LoadFloat("vae_eps");
        var noise = c.LoadFloat("noise");

        var options = TestPipelines.Options(o =>
        {
            o.ModelDirectory = FixturePaths.TinyCheckpoint;
            o.Device = DevicePreference.Cpu;
            o.WeightDType = Runtime.Compute.TensorDType.F32;
            o.Budget.DeviceMemory = "4GiB";
            o.ImageEditing = true;
        });
        var engine = new RecordingEngine(ZImageEngineFactory.Create(options));
        using var pipeline = new ImagePipeline(engine, options);
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = prompt,
            NegativePrompt = negative,
            Width = w,
            Height = h,
            Steps = steps,
            Guidance = g,
            Mode = g > 0 ? GenerationMode.Standard : GenerationMode.Turbo,
            InitImage = init,
            Mask = mask,
            Strength = strength,
            InitialLatents = new LatentTensor(noise.Data, noise.Shape),
            PosteriorNoise = new LatentTensor(eps.Data, eps.Shape),
        });

        int start = ImageEditing.StartStep(steps, strength);
        Assert.Equal(c.Param<int>("t_start"), start);
        Assert.Equal(strength, result.Parameters.Strength);
        Assert.Equal(masked, result.Parameters.MaskGiven);
        var rec = engine.Recorded;
        float[] sigmasFull = engine.Sigmas(steps);
        var derived = new Dictionary<string, float[]>(StringComparer.Ordinal)
        {
            ["sigmas_full"] = sigmasFull,
            ["timesteps_full"] = sigmasFull[..steps].Select(s => s * 1000f).ToArray(),
            ["sigmas"] = sigmasFull[start..],
            ["timesteps"] = sigmasFull[start..steps].Select(s => s * 1000f).ToArray(),
            ["init_image"] = ImageEditing.ToModelInput(init),
        };
        if (mask is not null) derived["mask"] = ImageEditing.BinarizedMask(mask);
        if (rec.TryGetValue("final_latents", out var fin)) derived["decoder_input"] = fin.Select(v => v / 0.3611f + 0.1159f).ToArray();
        if (rec.TryGetValue("decoded", out var dec))
        {
            // [3,H,W] → HWC clamp(x·0.5 + 0.5, 0, 1), as the pipeline's output_type='np'.
            var f01 = new float[dec.Length];
            int plane = h * w;
            for (int ch = 0; ch < 3; ch++)
                for (int i = 0; i < plane; i++) f01[i * 3 + ch] = Math.Clamp(dec[ch * plane + i] * 0.5f + 0.5f, 0f, 1f);
            derived["image_float01"] = f01;
        }

        int compared = 0;
        foreach (var spec in c.Outputs)
        {
            if (NotProduced.Contains(spec.Name)) continue;
            if (spec.Name == "image_uint8")
            {
                CompareImage(c, Assert.Single(result.Images).Pixels);
                compared++;
                continue;
            }
            float[] actual = rec.TryGetValue(spec.Name, out var r) ? r
                : derived.TryGetValue(spec.Name, out var d) ? d
                : throw new Xunit.Sdk.XunitException($"{name}: nothing produced the reference output '{spec.Name}'.");
            var expected = c.LoadFloat(spec.Name);
            bool exact = spec.Name is "init_image" or "mask" or "mask_latent";
            double tol = exact ? 0 : c.ToleranceFor(spec.Name).RecommendedMaxAbs;
            double err = TensorAssert.Close(expected.Data, actual, tol, $"{name} {spec.Name}", expected.Shape);
            output.WriteLine($"{name} {spec.Name}: max|Δ| = {err:E3} (tolerance {tol:E2})");
            compared++;
        }
        Assert.True(compared >= 10, $"{name}: only {compared} outputs compared.");

        // The plan runs the same edit path (blank image, all-keep mask): every stage's planned peak is the measured one.
        Assert.Contains(result.Stages, s => s.Name == "vae-encode");
        Assert.Equal(steps - start, result.Stages.Count(s => s.Name.StartsWith("denoise-step-", StringComparison.Ordinal)));
        foreach (var stage in result.Stages)
            Assert.True(stage.PlannedPeakBytes == stage.MeasuredPeakBytes, $"{name} {stage.Name}: planned {stage.PlannedPeakBytes} B, measured {stage.MeasuredPeakBytes} B");
    }

    private void CompareImage(ReferenceCase c, byte[] actual)
    {
        var expected = c.LoadBytes("image_uint8").Data;
        var tol = c.ToleranceFor("image_uint8");
        Assert.Equal(expected.Length, actual.Length);
        int differing = 0, maxDiff = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            int d = Math.Abs(actual[i] - expected[i]);
            if (d > 0) differing++;
            maxDiff = Math.Max(maxDiff, d);
        }
        output.WriteLine($"{c.Name} image_uint8: max diff {maxDiff}, {differing} of {actual.Length} differ");
        Assert.True(maxDiff <= tol.RecommendedMaxAbs, $"{c.Name}: max |diff| {maxDiff} > {tol.RecommendedMaxAbs}");
        Assert.True(differing <= (tol.MaxFractionDiffering ?? 0.01) * actual.Length, $"{c.Name}: {differing} of {actual.Length} values differ");
    }
}
