using Xunit.Abstractions;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests.Infrastructure;

/// <summary>Comparisons shared by the pipeline-level parity tests (edit and LoRA end-to-end cases) against a manifest case's outputs.</summary>
public static class ReferenceOutputs
{
    /// <summary>A pipeline over the tiny checkpoint in f32 on the CPU accelerator (4 GiB budget) whose engine records every intermediate.</summary>
    public static (RecordingEngine Engine, ImagePipeline Pipeline) RecordingTinyPipeline(Action<ZImageOptions> configure)
    {
        var options = TestPipelines.Options(o =>
        {
            o.ModelDirectory = FixturePaths.TinyCheckpoint;
            o.Device = DevicePreference.Cpu;
            o.WeightDType = Runtime.Compute.TensorDType.F32;
            o.Budget.DeviceMemory = "4GiB";
            configure(o);
        });
        var engine = new RecordingEngine(ZImageEngineFactory.Create(options));
        return (engine, new ImagePipeline(engine, options));
    }

    /// <summary>Adds <c>decoder_input</c> (latents/0.3611 + 0.1159) and <c>image_float01</c> (HWC clamp(x·0.5 + 0.5, 0, 1)) derived from what the run recorded.</summary>
    public static void AddDecoderOutputs(IReadOnlyDictionary<string, float[]> recorded, Dictionary<string, float[]> derived, int width, int height)
    {
        if (recorded.TryGetValue("final_latents", out var fin)) derived["decoder_input"] = fin.Select(v => v / 0.3611f + 0.1159f).ToArray();
        if (recorded.TryGetValue("decoded", out var dec))
        {
            // [3,H,W] → HWC, as the pipeline's output_type='np'.
            var f01 = new float[dec.Length];
            int plane = height * width;
            for (int ch = 0; ch < 3; ch++)
                for (int i = 0; i < plane; i++) f01[i * 3 + ch] = Math.Clamp(dec[ch * plane + i] * 0.5f + 0.5f, 0f, 1f);
            derived["image_float01"] = f01;
        }
    }

    /// <summary>
    /// Compares every output the case declares (except <paramref name="notProduced"/>) with what the run recorded or
    /// what was derived from it, each with its manifest tolerance (<paramref name="exact"/> names must match exactly;
    /// <c>image_uint8</c> is the result's image). Returns how many outputs were compared.
    /// </summary>
    public static int CompareAll(ReferenceCase c, IReadOnlyDictionary<string, float[]> recorded, IReadOnlyDictionary<string, float[]> derived,
        GenerationResult result, ITestOutputHelper output, IReadOnlySet<string>? notProduced = null, IReadOnlyCollection<string>? exact = null)
    {
        int compared = 0;
        foreach (var spec in c.Outputs)
        {
            if (notProduced?.Contains(spec.Name) == true) continue;
            compared++;
            if (spec.Name == "image_uint8")
            {
                CompareImage(c, Assert.Single(result.Images).Pixels, output);
                continue;
            }
            float[] actual = recorded.TryGetValue(spec.Name, out var r) ? r
                : derived.TryGetValue(spec.Name, out var d) ? d
                : throw new Xunit.Sdk.XunitException($"{c.Name}: nothing produced the reference output '{spec.Name}'.");
            var expected = c.LoadFloat(spec.Name);
            double tol = exact?.Contains(spec.Name) == true ? 0 : c.ToleranceFor(spec.Name).RecommendedMaxAbs;
            double err = TensorAssert.Close(expected.Data, actual, tol, $"{c.Name} {spec.Name}", expected.Shape);
            output.WriteLine($"{c.Name} {spec.Name}: max|Δ| = {err:E3} (tolerance {tol:E2})");
        }
        return compared;
    }

    /// <summary>The uint8 image within the manifest's ±max on at most the allowed fraction of values.</summary>
    public static void CompareImage(ReferenceCase c, byte[] actual, ITestOutputHelper output)
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

    /// <summary>Every stage's planned workspace peak equals the one the allocator measured.</summary>
    public static void AssertPlannedEqualsMeasured(string name, GenerationResult result)
    {
        Assert.NotEmpty(result.Stages);
        foreach (var stage in result.Stages)
            Assert.True(stage.PlannedPeakBytes == stage.MeasuredPeakBytes, $"{name} {stage.Name}: planned {stage.PlannedPeakBytes} B, measured {stage.MeasuredPeakBytes} B");
    }
}
