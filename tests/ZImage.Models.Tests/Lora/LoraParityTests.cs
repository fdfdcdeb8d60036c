using System.Runtime.InteropServices;
using Xunit.Abstractions;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Models.Tests.Transformer;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Lora;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Lora;

/// <summary>
/// The edit references' <c>lora</c> cases except the <c>e2e</c> variant (which runs through the pipeline in
/// <c>LoraE2EParityTests</c>): <c>weights</c> (the three key formats read to the same update and merge to identical
/// weights) and <c>transformer_forward</c> (the tiny DiT with the diffusers-format LoRA merged at materialization
/// matches out_base, out_scale1.0 and out_scale0.7, and the fused weights the case stores). A case of another variant
/// fails: nothing here knows how to check it.
/// </summary>
[Collection(ComputeCollection.Name)]
[Trait("Category", "Parity")]
public sealed class LoraParityTests(ComputeFixture fx, ITestOutputHelper output)
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in EditReferenceManifest.OfKind("lora").Where(c => Variant(c) != "e2e")) data.Add(c.Name);
        if (data.Count == 0) throw new InvalidOperationException($"{EditReferenceManifest.ManifestPath} has no lora case outside the e2e variant.");
        return data;
    }

    internal static string Variant(ReferenceCase c) => c.Raw.GetProperty("variant").GetString()!;

    private static string InCase(ReferenceCase c, string file) => Path.Combine(c.ReferenceDir, file);

    internal static SafetensorsCheckpoint OpenTransformer() =>
        SafetensorsCheckpoint.Open(Path.Combine(FixturePaths.TinyCheckpoint, ZImageConfig.TransformerFolder));

    [Theory]
    [MemberData(nameof(Cases))]
    public void LoraCaseMatchesTheReference(string caseName)
    {
        var c = EditReferenceManifest.Get(caseName);
        switch (Variant(c))
        {
            case "weights": CheckWeights(c); break;
            case "transformer_forward": CheckForward(c); break;
            default: throw new Xunit.Sdk.XunitException($"{caseName}: lora variant '{Variant(c)}' has no check.");
        }
    }

    private void CheckWeights(ReferenceCase c)
    {
        using var model = OpenTransformer();
        string[] files = [c.File, .. c.Raw.GetProperty("other_files").EnumerateArray().Select(e => e.GetString()!)];
        var adapters = files.Select(f => LoraAdapter.Load(InCase(c, f), model)).ToArray();
        var targets = c.Param<string[]>("target_modules").Select(t => t + ".weight").Order(StringComparer.Ordinal).ToArray();
        int rank = c.Param<int>("rank");
        var converted = c.Params.GetProperty("converted_lora_config");
        for (int i = 0; i < adapters.Length; i++)
        {
            Assert.Equal(targets, adapters[i].Modules.Keys.Order(StringComparer.Ordinal));
            Assert.All(adapters[i].Modules.Values, m => Assert.Equal(rank, m.Rank));
            // The scaling PEFT runs with is the converted config's lora_alpha / r (alpha folded into A, B for non-diffusers files).
            var cfg = converted.GetProperty(Path.GetFileName(files[i]));
            double scaling = cfg.GetProperty("lora_alpha").GetDouble() / cfg.GetProperty("r").GetDouble();
            Assert.All(adapters[i].Modules.Values, m => Assert.Equal(scaling, m.Scaling));
        }
        Assert.Equal([LoraKeyFormat.Diffusers, LoraKeyFormat.Kohya, LoraKeyFormat.DiffusionModel], adapters.Select(a => a.Format).Order());

        var maxDiff = c.Params.GetProperty("fused_weight_max_abs_diff_vs_diffusers_file");
        foreach (string weight in targets)
        {
            float[] fused0 = model.ReadSingles(weight);
            LoraAdapter.Merge(adapters[0].Modules[weight], fused0, 1.0);
            for (int i = 1; i < adapters.Length; i++)
            {
                float[] fused = model.ReadSingles(weight);
                LoraAdapter.Merge(adapters[i].Modules[weight], fused, 1.0);
                TensorAssert.Close(fused0, fused, maxDiff.GetProperty(Path.GetFileName(files[i])).GetDouble(), $"{files[i]} {weight}");
            }
        }
        output.WriteLine($"{c.Name}: {targets.Length} modules, {files.Length} formats fuse identically");
    }

    private void CheckForward(ReferenceCase c)
    {
        string loraFile = InCase(c, c.Raw.GetProperty("lora_file").GetString()!);
        var x = c.LoadFloat("x");
        var capFeats = c.LoadFloat("cap_feats");
        float t = c.LoadFloat("t").Data[0];
        var runs = new List<(string Output, double Scale)> { ("out_base", 0) };
        runs.AddRange(c.Param<double[]>("lora_scales").Select(s => ($"out_scale{s.ToString("0.0##", System.Globalization.CultureInfo.InvariantCulture)}", s)));
        Assert.All(runs, r => Assert.Contains(c.Outputs, o => o.Name == r.Output));
        foreach (var (outName, scale) in runs)
        {
            LoraMergedReader? merged = null;
            using var dit = new TinyTransformer(fx, TensorDType.F32, wrapReader: r =>
                outName == "out_base" ? r : merged = new LoraMergedReader(r, [(LoraAdapter.Load(loraFile, r), scale)]));
            float[] actual = dit.Forward(x, t, capFeats);
            double tol = c.ToleranceFor(outName).RecommendedMaxAbs;
            double err = TensorAssert.Close(c.LoadFloat(outName), actual, tol);
            output.WriteLine($"{c.Name} {outName}: max|Δ| = {err:E3} (tolerance {tol:E2})");

            if (merged is null) continue;
            string prefix = $"debug/fused_scale{outName["out_scale".Length..]}/";
            foreach (var spec in c.Intermediates.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal)))
            {
                float[] ours = MemoryMarshal.Cast<byte, float>(merged.GetBytes(spec.Name[prefix.Length..])).ToArray();
                // PEFT's float32 merge: the same roundings up to the order of the rank-4 sum inside B @ A.
                double werr = TensorAssert.Close(c.LoadFloat(spec.Name), ours, 1e-6);
                output.WriteLine($"{c.Name} {spec.Name}: max|Δ| = {werr:E3}");
            }
        }
    }
}
