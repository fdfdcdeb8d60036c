using System.Text.Json;
using ZImage.Runtime.Models.Configuration;

namespace ZImage.Runtime.Pipeline.Engine;

/// <summary>
/// The configuration of the tiny random Z-Image used when no checkpoint is given: the same shapes as the test fixture
/// <c>tiny-zimage</c> (DiT dim 64, 2+1+1 blocks; Qwen3 hidden 32, 3 layers; VAE channels 32/32/64/64), embedded so the
/// demo runs from a fresh clone.
/// </summary>
public static class TinyZImageConfig
{
    private const string Transformer = """{"_class_name":"ZImageTransformer2DModel","all_f_patch_size":[1],"all_patch_size":[2],"axes_dims":[8,12,12],"axes_lens":[1536,512,512],"cap_feat_dim":32,"dim":64,"in_channels":16,"n_heads":2,"n_kv_heads":2,"n_layers":2,"n_refiner_layers":1,"norm_eps":1e-05,"qk_norm":true,"rope_theta":256.0,"t_scale":1000.0}""";
    private const string TextEncoder = """{"architectures":["Qwen3ForCausalLM"],"attention_bias":false,"bos_token_id":151643,"eos_token_id":151645,"head_dim":16,"hidden_act":"silu","hidden_size":32,"intermediate_size":64,"max_position_embeddings":40960,"num_attention_heads":4,"num_hidden_layers":3,"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,"tie_word_embeddings":true,"torch_dtype":"bfloat16","vocab_size":151936}""";
    private const string Vae = """{"_class_name":"AutoencoderKL","act_fn":"silu","block_out_channels":[32,32,64,64],"down_block_types":["DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D"],"force_upcast":true,"in_channels":3,"latent_channels":16,"latents_mean":null,"latents_std":null,"layers_per_block":1,"mid_block_add_attention":true,"norm_num_groups":32,"out_channels":3,"sample_size":1024,"scaling_factor":0.3611,"shift_factor":0.1159,"up_block_types":["UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D"],"use_post_quant_conv":false,"use_quant_conv":false}""";
    private const string Scheduler = """{"_class_name":"FlowMatchEulerDiscreteScheduler","num_train_timesteps":1000,"use_dynamic_shifting":false,"shift":3.0}""";

    /// <summary>The tiny configuration.</summary>
    public static ZImageConfig Config { get; } = new ZImageConfig(
        JsonSerializer.Deserialize<TransformerConfig>(Transformer, ConfigJson.Options)!,
        JsonSerializer.Deserialize<Qwen3Config>(TextEncoder, ConfigJson.Options)!,
        JsonSerializer.Deserialize<VaeConfig>(Vae, ConfigJson.Options)!,
        JsonSerializer.Deserialize<SchedulerConfig>(Scheduler, ConfigJson.Options)!).Validate();
}
