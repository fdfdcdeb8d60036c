using System.Text.Json;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Configuration;

/// <summary>Config records read the tiny checkpoint's files and the shipped Turbo files, and reject bad values.</summary>
public sealed class ConfigLoadingTests : IDisposable
{
    private readonly TempDirectory _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static string Tiny(string rel) => Path.Combine(FixturePaths.TinyCheckpoint, rel);

    [Fact]
    public void TinyConfigsMirrorTheirFiles()
    {
        ZImageConfig c = ZImageConfig.Load(FixturePaths.TinyCheckpoint, out ModelIndex index);
        Assert.Equal("ZImagePipeline", index.ClassName);
        Assert.Equal(new ModelIndexComponent("transformers", "Qwen3Model"), index.Components["text_encoder"]);
        Assert.Equal(5, index.Components.Count);

        using JsonDocument t = JsonDocument.Parse(File.ReadAllText(Tiny("transformer/config.json")));
        Assert.Equal(t.RootElement.GetProperty("dim").GetInt32(), c.Transformer.Dim);
        Assert.Equal(t.RootElement.GetProperty("n_heads").GetInt32(), c.Transformer.NHeads);
        Assert.Equal(t.RootElement.GetProperty("n_refiner_layers").GetInt32(), c.Transformer.NRefinerLayers);
        Assert.Equal(t.RootElement.GetProperty("axes_dims").EnumerateArray().Select(e => e.GetInt32()), c.Transformer.AxesDims);
        Assert.Equal(t.RootElement.GetProperty("axes_lens").EnumerateArray().Select(e => e.GetInt32()), c.Transformer.AxesLens);
        Assert.Equal(t.RootElement.GetProperty("all_patch_size")[0].GetInt32(), c.Transformer.PatchSize);
        Assert.Equal(t.RootElement.GetProperty("all_f_patch_size")[0].GetInt32(), c.Transformer.FPatchSize);
        Assert.Equal(t.RootElement.GetProperty("rope_theta").GetDouble(), c.Transformer.RopeTheta);
        Assert.Equal(t.RootElement.GetProperty("t_scale").GetDouble(), c.Transformer.TScale);
        Assert.Equal(c.Transformer.Dim / c.Transformer.NHeads, c.Transformer.HeadDim);

        using JsonDocument te = JsonDocument.Parse(File.ReadAllText(Tiny("text_encoder/config.json")));
        Assert.Equal(te.RootElement.GetProperty("head_dim").GetInt32(), c.TextEncoder.HeadDim);
        Assert.Equal(te.RootElement.GetProperty("num_key_value_heads").GetInt32(), c.TextEncoder.NumKeyValueHeads);
        Assert.Equal(te.RootElement.GetProperty("rope_theta").GetDouble(), c.TextEncoder.RopeTheta);
        Assert.Equal(te.RootElement.GetProperty("tie_word_embeddings").GetBoolean(), c.TextEncoder.TieWordEmbeddings);
        Assert.Equal(te.RootElement.GetProperty("num_hidden_layers").GetInt32() - 1, c.TextEncoder.LayersUsedByZImage);

        using JsonDocument v = JsonDocument.Parse(File.ReadAllText(Tiny("vae/config.json")));
        Assert.Equal(v.RootElement.GetProperty("block_out_channels").EnumerateArray().Select(e => e.GetInt32()), c.Vae.BlockOutChannels);
        Assert.Equal(v.RootElement.GetProperty("scaling_factor").GetDouble(), c.Vae.ScalingFactor);
        Assert.Equal(v.RootElement.GetProperty("shift_factor").GetDouble(), c.Vae.ShiftFactor);
        Assert.False(c.Vae.UsePostQuantConv);
        Assert.True(c.Vae.MidBlockAddAttention);

        using JsonDocument s = JsonDocument.Parse(File.ReadAllText(Tiny("scheduler/scheduler_config.json")));
        Assert.Equal(s.RootElement.GetProperty("shift").GetDouble(), c.Scheduler.Shift);
        Assert.False(c.Scheduler.UseDynamicShifting);
        // Fields absent from the file take the diffusers class defaults.
        Assert.Equal(0.5, c.Scheduler.BaseShift);
        Assert.Equal(4096, c.Scheduler.MaxImageSeqLen);
    }

    [Fact]
    public void FfnHiddenFormulaMatchesTheStoredFeedForwardShape()
    {
        ZImageConfig c = ZImageConfig.Load(FixturePaths.TinyCheckpoint);
        using var ckpt = SafetensorsCheckpoint.Open(Tiny("transformer"));
        // int(64 / 3 * 8) = 170: truncation, not rounding (64·8/3 = 170.67).
        Assert.Equal([c.Transformer.FfnHidden, c.Transformer.Dim], ckpt.GetInfo("layers.0.feed_forward.w1.weight").Shape);
        Assert.Equal([c.Transformer.Dim, c.Transformer.FfnHidden], ckpt.GetInfo("layers.0.feed_forward.w2.weight").Shape);
        Assert.Equal(10240, ZImageConfig.Turbo.Transformer.FfnHidden);
    }

    [Fact]
    public void EmbeddedTurboEqualsTheShippedConfigFiles()
    {
        // The shipped Tongyi-MAI/Z-Image-Turbo config.json contents (architecture spec §1).
        const string transformer = """{"all_f_patch_size":[1],"all_patch_size":[2],"axes_dims":[32,48,48],"axes_lens":[1536,512,512],"cap_feat_dim":2560,"dim":3840,"in_channels":16,"n_heads":30,"n_kv_heads":30,"n_layers":30,"n_refiner_layers":2,"norm_eps":1e-05,"qk_norm":true,"rope_theta":256.0,"t_scale":1000.0,"_class_name":"ZImageTransformer2DModel"}""";
        const string vae = """{"_class_name":"AutoencoderKL","act_fn":"silu","block_out_channels":[128,256,512,512],"down_block_types":["DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D"],"up_block_types":["UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D"],"force_upcast":true,"in_channels":3,"out_channels":3,"latent_channels":16,"latents_mean":null,"latents_std":null,"layers_per_block":2,"mid_block_add_attention":true,"norm_num_groups":32,"sample_size":1024,"scaling_factor":0.3611,"shift_factor":0.1159,"use_quant_conv":false,"use_post_quant_conv":false}""";
        const string te = """{"architectures":["Qwen3ForCausalLM"],"attention_bias":false,"head_dim":128,"hidden_act":"silu","hidden_size":2560,"intermediate_size":9728,"max_position_embeddings":40960,"model_type":"qwen3","num_attention_heads":32,"num_hidden_layers":36,"num_key_value_heads":8,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,"tie_word_embeddings":true,"vocab_size":151936,"bos_token_id":151643,"eos_token_id":151645,"torch_dtype":"bfloat16"}""";
        const string sched = """{"_class_name":"FlowMatchEulerDiscreteScheduler","num_train_timesteps":1000,"use_dynamic_shifting":false,"shift":3.0}""";
        AssertSameJson(ConfigJson.Serialize(JsonSerializer.Deserialize<TransformerConfig>(transformer, ConfigJson.Options)), ConfigJson.Serialize(ZImageConfig.Turbo.Transformer));
        AssertSameJson(ConfigJson.Serialize(JsonSerializer.Deserialize<VaeConfig>(vae, ConfigJson.Options)), ConfigJson.Serialize(ZImageConfig.Turbo.Vae));
        AssertSameJson(ConfigJson.Serialize(JsonSerializer.Deserialize<Qwen3Config>(te, ConfigJson.Options)), ConfigJson.Serialize(ZImageConfig.Turbo.TextEncoder));
        AssertSameJson(ConfigJson.Serialize(JsonSerializer.Deserialize<SchedulerConfig>(sched, ConfigJson.Options)), ConfigJson.Serialize(ZImageConfig.Turbo.Scheduler));
        ZImageConfig.Turbo.Validate();
        Assert.Equal(128, ZImageConfig.Turbo.Transformer.HeadDim);
        Assert.Equal(256, ZImageConfig.Turbo.Transformer.AdaLnEmbedDim);
        Assert.Equal(64, ZImageConfig.Turbo.Transformer.PatchFeatureDim);
        Assert.Equal(4096, ZImageConfig.Turbo.TextEncoder.QueryWidth);
        Assert.Equal(8, ZImageConfig.Turbo.Vae.SpatialScale);
    }

    private static void AssertSameJson(string expected, string actual) => Assert.Equal(expected, actual);

    private string TinyCopy()
    {
        // Configs only: weights are not needed for config validation.
        string root = _tmp.File("ckpt");
        foreach (string f in new[] { "model_index.json", "transformer/config.json", "text_encoder/config.json", "vae/config.json", "scheduler/scheduler_config.json" })
        {
            string dest = Path.Combine(root, f);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.WriteAllText(dest, File.ReadAllText(Tiny(f)));
        }
        return root;
    }

    private static void EditJson(string path, string field, string rawValue)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if (rawValue == "<remove>") node.Remove(field);
        else node[field] = System.Text.Json.Nodes.JsonNode.Parse(rawValue);
        File.WriteAllText(path, node.ToJsonString());
    }

    [Theory]
    [InlineData("transformer/config.json", "n_heads", "3", "n_heads")]
    [InlineData("transformer/config.json", "axes_dims", "[8,12,14]", "axes_dims")]
    [InlineData("transformer/config.json", "axes_dims", "[8,24]", "axes_dims")]
    [InlineData("transformer/config.json", "dim", "0", "dim")]
    [InlineData("transformer/config.json", "all_f_patch_size", "[1,1]", "all_f_patch_size")]
    [InlineData("transformer/config.json", "dim", "\"big\"", "dim")]
    [InlineData("text_encoder/config.json", "num_key_value_heads", "3", "num_key_value_heads")]
    [InlineData("text_encoder/config.json", "rope_scaling", "{\"type\":\"yarn\"}", "rope_scaling")]
    [InlineData("vae/config.json", "norm_num_groups", "5", "block_out_channels[0]")]
    [InlineData("vae/config.json", "scaling_factor", "-1", "scaling_factor")]
    [InlineData("scheduler/scheduler_config.json", "use_karras_sigmas", "true", "use_karras_sigmas")]
    [InlineData("scheduler/scheduler_config.json", "shift", "0", "shift")]
    [InlineData("model_index.json", "vae", "[\"diffusers\",\"AutoencoderTiny\"]", "vae")]
    [InlineData("model_index.json", "transformer", "<remove>", "transformer")]
    [InlineData("model_index.json", "_class_name", "\"FluxPipeline\"", "_class_name")]
    public void BadValuesAreRejectedNamingTheFieldAndFile(string file, string field, string value, string reportedField)
    {
        string root = TinyCopy();
        EditJson(Path.Combine(root, file), field, value);
        var ex = Assert.Throws<CheckpointConfigurationException>(() => ZImageConfig.Load(root));
        Assert.Contains(reportedField, ex.Field ?? ex.Message);
        Assert.Contains(Path.GetFileName(file), ex.ConfigSource);
    }

    [Fact]
    public void MissingConfigFileIsNamed()
    {
        string root = TinyCopy();
        File.Delete(Path.Combine(root, "vae/config.json"));
        var ex = Assert.Throws<CheckpointConfigurationException>(() => ZImageConfig.Load(root));
        Assert.EndsWith(Path.Combine("vae", "config.json"), ex.ConfigSource);
    }

    [Fact]
    public void MalformedJsonIsAConfigurationError()
    {
        string root = TinyCopy();
        File.WriteAllText(Path.Combine(root, "transformer/config.json"), "{\"dim\": 64,,");
        Assert.Throws<CheckpointConfigurationException>(() => ZImageConfig.Load(root));
    }

    // Fuzz family of the safetensors header bug: System.Text.Json parses "\ud800" but cannot read it as text.
    [Theory]
    [InlineData("model_index.json", "{\"x\\ud800\": 1, ")]
    [InlineData("model_index.json", "{\"_name_or_path\": \"a\\udc00\", ")]
    [InlineData("transformer/config.json", "{\"x\\ud800\": 1, ")]
    [InlineData("transformer/config.json", "{\"_class_name\": \"a\\udc00\", ")]
    [InlineData("text_encoder/config.json", "{\"hidden_act\": \"silu\\ud800\", ")]
    public void AnEscapedLoneSurrogateInAConfigIsAConfigurationErrorNamingTheFile(string file, string prefix)
    {
        string root = TinyCopy();
        string path = Path.Combine(root, file);
        string text = File.ReadAllText(path).TrimStart();
        File.WriteAllText(path, prefix + text[1..]);
        var ex = Assert.Throws<CheckpointConfigurationException>(() => ZImageConfig.Load(root));
        Assert.Contains(Path.GetFileName(file), ex.ConfigSource);
    }
}
