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

        var (engine, pipeline) = ReferenceOutputs.RecordingTinyPipeline(o => o.ImageEditing = true);
        using var _ = pipeline;
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
        ReferenceOutputs.AddDecoderOutputs(rec, derived, w, h);

        int compared = ReferenceOutputs.CompareAll(c, rec, derived, result, output, NotProduced, exact: ["init_image", "mask", "mask_latent"]);
        Assert.True(compared >= 10, $"{name}: only {compared} outputs compared.");

        // The plan runs the same edit path (blank image, all-keep mask): every stage's planned peak is the measured one.
        Assert.Contains(result.Stages, s => s.Name == "vae-encode");
        Assert.Equal(steps - start, result.Stages.Count(s => s.Name.StartsWith("denoise-step-", StringComparison.Ordinal)));
        ReferenceOutputs.AssertPlannedEqualsMeasured(name, result);
    }
}
