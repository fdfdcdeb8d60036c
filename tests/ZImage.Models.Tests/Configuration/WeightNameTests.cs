using System.Text.Json.Nodes;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Configuration;

/// <summary>Expected weight names and shapes, checked against the tiny checkpoint, the Turbo counts and tampered copies.</summary>
public sealed class WeightNameTests : IDisposable
{
    private readonly TempDirectory _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void TurboSpecsHaveTheDocumentedTensorAndParameterCounts()
    {
        ComponentWeightSpec t = ZImageWeightNames.Transformer(ZImageConfig.Turbo.Transformer);
        ComponentWeightSpec te = ZImageWeightNames.TextEncoder(ZImageConfig.Turbo.TextEncoder);
        ComponentWeightSpec v = ZImageWeightNames.Vae(ZImageConfig.Turbo.Vae);
        Assert.Equal(521, t.Weights.Count);
        Assert.Equal(6_154_908_736, t.ParameterCount);
        Assert.Equal(398, te.Weights.Count);
        Assert.Equal(4_022_468_096, te.ParameterCount);
        Assert.Equal(138, v.Weights.Count);
        Assert.Equal(49_545_475, v.ParameterCount);
        Assert.Equal([10240, 3840], t.ToDictionary()["layers.29.feed_forward.w1.weight"]);
        Assert.Equal([15360, 256], t.ToDictionary()["noise_refiner.1.adaLN_modulation.0.weight"]);
        Assert.DoesNotContain(t.Weights, w => w.Name.StartsWith("context_refiner.", StringComparison.Ordinal) && w.Name.Contains("adaLN"));
        Assert.Equal([256, 512, 1, 1], v.ToDictionary()["decoder.up_blocks.2.resnets.0.conv_shortcut.weight"]);
        Assert.Equal(t.Weights.Count, t.Weights.Select(w => w.Name).Distinct().Count());
    }

    [Fact]
    public void TinyCheckpointValidatesCompletely()
    {
        using CheckpointFolder folder = CheckpointFolder.Open(FixturePaths.TinyCheckpoint);
        CheckpointValidationReport report = folder.ValidateWeights();
        Assert.True(report.IsValid);
        foreach (ComponentValidationResult c in report.Components)
        {
            Assert.Empty(c.Missing);
            Assert.Empty(c.Unexpected);
            Assert.Empty(c.Mismatches);
        }
        ComponentValidationResult vae = report.Components.Single(c => c.Component == "vae");
        Assert.NotEmpty(vae.KnownUnused);
        Assert.All(vae.KnownUnused, k => Assert.StartsWith("encoder.", k));
        Assert.Equal(folder.Vae.TensorNames.Count, vae.KnownUnused.Count + ZImageWeightNames.Vae(folder.Config.Vae).Weights.Count);
        Assert.Equal(folder.Transformer.TensorNames.Count, ZImageWeightNames.Transformer(folder.Config.Transformer).Weights.Count);
        Assert.Equal(folder.TextEncoder.TensorNames.Count, ZImageWeightNames.TextEncoder(folder.Config.TextEncoder).Weights.Count);
        Assert.True(File.Exists(Path.Combine(folder.TokenizerDirectory, "tokenizer.json")));
    }

    private string CopyTiny() => _tmp.CopyTree(FixturePaths.TinyCheckpoint, "ckpt");

    [Fact]
    public void TamperedCheckpointListsMissingUnexpectedAndMismatchedKeys()
    {
        string root = CopyTiny();
        // Drop one transformer key from the weight map (the shard still holds it, but the map is authoritative).
        string indexPath = Directory.GetFiles(Path.Combine(root, "transformer"), "*.index.json").Single();
        JsonObject index = JsonNode.Parse(File.ReadAllText(indexPath))!.AsObject();
        index["weight_map"]!.AsObject().Remove("layers.1.ffn_norm2.weight");
        File.WriteAllText(indexPath, index.ToJsonString());
        // Add a stray tensor and reshape one in the text encoder.
        SafetensorsEditing.Rewrite(Path.Combine(root, "text_encoder", "model.safetensors"), entries =>
        {
            int i = entries.FindIndex(e => e.Name == "model.norm.weight");
            entries[i] = entries[i] with { Shape = [2, 16] };
            entries.Add(SafetensorsEntry.FromSingles("model.layers.0.self_attn.rotary_emb.inv_freq", [8], new float[8]));
            return entries;
        });

        var ex = Assert.Throws<CheckpointValidationException>(() => CheckpointFolder.Open(root).Dispose());
        Assert.Equal(["transformer/layers.1.ffn_norm2.weight"], ex.MissingKeys);
        Assert.Equal(["text_encoder/model.layers.0.self_attn.rotary_emb.inv_freq"], ex.UnexpectedKeys);
        WeightShapeMismatch m = Assert.Single(ex.ShapeMismatches);
        Assert.Equal("model.norm.weight", m.Name);
        Assert.Equal([2, 16], m.ActualShape);
        Assert.Contains("layers.1.ffn_norm2.weight", ex.Message);
        Assert.Contains("rotary_emb.inv_freq", ex.Message);
        Assert.Contains("model.norm.weight", ex.Message);
        Assert.Contains("[32]", ex.Message);
    }

    [Fact]
    public void ConvShapedMidBlockAttentionIsAccepted()
    {
        string root = CopyTiny();
        SafetensorsEditing.Rewrite(Path.Combine(root, "vae", "diffusion_pytorch_model.safetensors"), entries => entries.Select(e =>
            e.Name.StartsWith("decoder.mid_block.attentions.0.to_", StringComparison.Ordinal) && e.Shape.Length == 2 ? e with { Shape = [.. e.Shape, 1, 1] } : e));
        using CheckpointFolder folder = CheckpointFolder.Open(root);
        Assert.Equal([64, 64, 1, 1], folder.Vae.GetInfo("decoder.mid_block.attentions.0.to_q.weight").Shape);
        Assert.True(folder.ValidateWeights().IsValid);
    }

    [Fact]
    public void IntegerWeightIsAMismatch()
    {
        string root = CopyTiny();
        SafetensorsEditing.Rewrite(Path.Combine(root, "vae", "diffusion_pytorch_model.safetensors"), entries => entries.Select(e =>
            e.Name == "decoder.conv_out.bias" ? e with { DType = SafetensorsDType.I16 } : e));
        var ex = Assert.Throws<CheckpointValidationException>(() => CheckpointFolder.Open(root).Dispose());
        Assert.Equal(SafetensorsDType.I16, Assert.Single(ex.ShapeMismatches).ActualDType);
    }

    [Fact]
    public void ConfigThatDisagreesWithTheWeightsFailsValidation()
    {
        string root = CopyTiny();
        string cfg = Path.Combine(root, "transformer", "config.json");
        JsonObject node = JsonNode.Parse(File.ReadAllText(cfg))!.AsObject();
        node["n_layers"] = 3;
        File.WriteAllText(cfg, node.ToJsonString());
        var ex = Assert.Throws<CheckpointValidationException>(() => CheckpointFolder.Open(root).Dispose());
        Assert.Equal(15, ex.MissingKeys.Count);
        Assert.All(ex.MissingKeys, k => Assert.StartsWith("transformer/layers.2.", k));

        using CheckpointFolder unchecked_ = CheckpointFolder.Open(root, validateWeights: false);
        Assert.False(unchecked_.ValidateWeights().IsValid);
    }

    [Fact]
    public void MissingWeightFileIsReported()
    {
        string root = CopyTiny();
        File.Delete(Path.Combine(root, "vae", "diffusion_pytorch_model.safetensors"));
        var ex = Assert.Throws<FileNotFoundException>(() => CheckpointFolder.Open(root).Dispose());
        Assert.Contains(Path.Combine(root, "vae"), ex.Message);
    }

    [Fact]
    public void MissingShardIsReported()
    {
        string root = CopyTiny();
        string shard = Directory.GetFiles(Path.Combine(root, "transformer"), "*-00002-of-00002.safetensors").Single();
        File.Delete(shard);
        var ex = Assert.Throws<SafetensorsFormatException>(() => CheckpointFolder.Open(root).Dispose());
        Assert.Contains(Path.GetFileName(shard), ex.Message);
    }
}
