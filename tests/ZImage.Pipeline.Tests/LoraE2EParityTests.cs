using System.Globalization;
using Xunit.Abstractions;
using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Models.Lora;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Runtime.Residency;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>
/// The edit references' <c>lora</c> cases of variant <c>e2e</c>: a text-to-image run on the tiny checkpoint with the
/// LoRA merged at load through <see cref="ZImageOptions.Loras"/> matches every output the manifest lists (prompt
/// embeddings, schedule, each step's model output and latents, final latents, decoder input, decoded image, uint8
/// image), its plan equals the measured peak of every stage, and the PNG metadata records the LoRA and its scale.
/// The run offloads the whole DiT (<see cref="OffloadMode.All"/>: every block uploaded from the host each step), so it
/// also shows that streamed blocks carry the merged weights (the merge happens whenever a weight is materialized) and
/// that the streamed rung is planned exactly with a LoRA; the resident merge is the transformer_forward cases'.
/// </summary>
[Trait("Category", "Parity")]
public sealed class LoraE2EParityTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in EditReferenceManifest.OfKind("lora").Where(c => c.Raw.GetProperty("variant").GetString() == "e2e")) data.Add(c.Name);
        if (data.Count == 0) throw new InvalidOperationException($"{EditReferenceManifest.ManifestPath} has no lora case of variant e2e.");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task LoraRunMatchesTheReferenceAndItsPlan(string name)
    {
        var c = EditReferenceManifest.Get(name);
        int h = c.Param<int>("H"), w = c.Param<int>("W"), steps = c.Param<int>("num_inference_steps");
        double scale = c.Param<double>("lora_scale");
        string lora = Path.Combine(c.ReferenceDir, c.Raw.GetProperty("lora_file").GetString()!);
        var latents = c.LoadFloat("initial_latents");
        var (engine, pipeline) = ReferenceOutputs.RecordingTinyPipeline(o =>
        {
            o.Loras = [LoraSpec.Parse($"{lora}:{scale.ToString(CultureInfo.InvariantCulture)}")];
            o.Residency.Offload = OffloadMode.All;
        });
        using var _ = pipeline;
        float g = c.Param<float>("guidance_scale");
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = c.Param<string>("prompt"),
            Width = w,
            Height = h,
            Steps = steps,
            Guidance = g,
            Mode = g > 0 ? GenerationMode.Standard : GenerationMode.Turbo,
            InitialLatents = new LatentTensor(latents.Data, latents.Shape),
        });

        float[] sigmas = engine.Sigmas(steps);
        var derived = new Dictionary<string, float[]>(StringComparer.Ordinal)
        {
            ["sigmas"] = sigmas,
            ["timesteps"] = sigmas[..steps].Select(s => s * 1000f).ToArray(),
        };
        ReferenceOutputs.AddDecoderOutputs(engine.Recorded, derived, w, h);
        int compared = ReferenceOutputs.CompareAll(c, engine.Recorded, derived, result, output);
        Assert.True(compared >= 2 * steps + 6, $"{name}: only {compared} outputs compared.");
        // The LoRA changes the run: without it the final latents are the case's debug/final_latents_without_lora.
        double change = c.Param<double>("max_abs_final_latents_change_vs_no_lora");
        var without = c.LoadFloat("debug/final_latents_without_lora").Data;
        Assert.True(engine.Recorded["final_latents"].Zip(without).Max(p => Math.Abs(p.First - p.Second)) > change / 2, $"{name}: the LoRA did not change the run.");

        ReferenceOutputs.AssertPlannedEqualsMeasured(name, result);
        Assert.Equal(OffloadMode.All, engine.Inner.Strategy.Offload);
        Assert.True(result.Plan.UploadedBytesPerStep > 0 && engine.Inner.TransformerStreaming.UploadedBytes == steps * result.Plan.UploadedBytesPerStep,
            $"{name}: uploaded {engine.Inner.TransformerStreaming.UploadedBytes} B over {steps} steps; planned {result.Plan.UploadedBytesPerStep} B per step");
        Assert.Equal(pipeline.Plan(new GenerationRequest { Prompt = c.Param<string>("prompt"), Width = w, Height = h, Steps = steps, Guidance = g }).Stages.Select(s => s.PeakBytes),
            result.Stages.Select(s => s.MeasuredPeakBytes));

        string expected = $"{Path.GetFileName(lora)}:{scale.ToString("0.###", CultureInfo.InvariantCulture)}";
        Assert.Equal(expected, result.Parameters.Loras);
        byte[] png = result.EncodePng();
        Assert.Equal(result.Parameters, PngMetadata.ReadParameters(png));
        Assert.Contains($"LoRA: {expected}", PngMetadata.ReadText(png)[PngMetadata.ParametersTextKey], StringComparison.Ordinal);
    }
}
