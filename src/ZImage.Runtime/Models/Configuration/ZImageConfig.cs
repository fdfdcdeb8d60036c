namespace ZImage.Runtime.Models.Configuration;

/// <summary>The configuration of every Z-Image component, as read from a checkpoint folder or embedded (<see cref="Turbo"/>).</summary>
/// <param name="Transformer">The DiT.</param>
/// <param name="TextEncoder">The Qwen3 text encoder.</param>
/// <param name="Vae">The autoencoder (decoder used).</param>
/// <param name="Scheduler">The flow-matching scheduler.</param>
public sealed record ZImageConfig(TransformerConfig Transformer, Qwen3Config TextEncoder, VaeConfig Vae, SchedulerConfig Scheduler)
{
    /// <summary>Component folder of the DiT.</summary>
    public const string TransformerFolder = "transformer";
    /// <summary>Component folder of the text encoder.</summary>
    public const string TextEncoderFolder = "text_encoder";
    /// <summary>Component folder of the tokenizer.</summary>
    public const string TokenizerFolder = "tokenizer";
    /// <summary>Component folder of the VAE.</summary>
    public const string VaeFolder = "vae";
    /// <summary>Component folder of the scheduler.</summary>
    public const string SchedulerFolder = "scheduler";

    /// <summary>
    /// The shipped <c>Tongyi-MAI/Z-Image-Turbo</c> configuration (its config.json files verbatim), so that memory
    /// plans and estimates work without the 30 GB of weights.
    /// </summary>
    public static ZImageConfig Turbo { get; } = new(
        new TransformerConfig
        {
            ClassName = "ZImageTransformer2DModel",
            AllPatchSize = [2],
            AllFPatchSize = [1],
            AxesDims = [32, 48, 48],
            AxesLens = [1536, 512, 512],
            CapFeatDim = 2560,
            Dim = 3840,
            InChannels = 16,
            NHeads = 30,
            NKvHeads = 30,
            NLayers = 30,
            NRefinerLayers = 2,
            NormEps = 1e-5,
            QkNorm = true,
            RopeTheta = 256.0,
            TScale = 1000.0,
        },
        new Qwen3Config
        {
            Architectures = ["Qwen3ForCausalLM"],
            ModelType = "qwen3",
            AttentionBias = false,
            HeadDimOverride = 128,
            HiddenAct = "silu",
            HiddenSize = 2560,
            IntermediateSize = 9728,
            MaxPositionEmbeddings = 40960,
            NumAttentionHeads = 32,
            NumHiddenLayers = 36,
            NumKeyValueHeads = 8,
            RmsNormEps = 1e-6,
            RopeTheta = 1_000_000,
            TieWordEmbeddings = true,
            VocabSize = 151936,
            BosTokenId = 151643,
            EosTokenId = 151645,
            TorchDType = "bfloat16",
        },
        new VaeConfig
        {
            ClassName = "AutoencoderKL",
            ActFn = "silu",
            BlockOutChannels = [128, 256, 512, 512],
            DownBlockTypes = ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
            UpBlockTypes = ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
            ForceUpcast = true,
            InChannels = 3,
            OutChannels = 3,
            LatentChannels = 16,
            LatentsMean = null,
            LatentsStd = null,
            LayersPerBlock = 2,
            MidBlockAddAttention = true,
            NormNumGroups = 32,
            SampleSize = 1024,
            ScalingFactor = 0.3611,
            ShiftFactor = 0.1159,
            UseQuantConv = false,
            UsePostQuantConv = false,
        },
        new SchedulerConfig
        {
            ClassName = "FlowMatchEulerDiscreteScheduler",
            NumTrainTimesteps = 1000,
            UseDynamicShifting = false,
            Shift = 3.0,
        });

    /// <summary>
    /// Reads <c>model_index.json</c> and the four component configs under <paramref name="checkpointDirectory"/>
    /// and validates them.
    /// </summary>
    /// <exception cref="CheckpointConfigurationException">A file is missing, malformed or out of range.</exception>
    public static ZImageConfig Load(string checkpointDirectory) => Load(checkpointDirectory, out _);

    /// <summary>As <see cref="Load(string)"/>, also returning the parsed <c>model_index.json</c>.</summary>
    public static ZImageConfig Load(string checkpointDirectory, out ModelIndex modelIndex)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointDirectory);
        string dir = Path.GetFullPath(checkpointDirectory);
        if (!Directory.Exists(dir)) throw new CheckpointConfigurationException(dir, null, "the checkpoint folder does not exist.");
        string indexPath = Path.Combine(dir, "model_index.json");
        modelIndex = ModelIndex.Load(indexPath).ValidateForZImage(indexPath);
        string t = Path.Combine(dir, TransformerFolder, "config.json");
        string te = Path.Combine(dir, TextEncoderFolder, "config.json");
        string v = Path.Combine(dir, VaeFolder, "config.json");
        string s = Path.Combine(dir, SchedulerFolder, "scheduler_config.json");
        return new ZImageConfig(
            ConfigJson.Load<TransformerConfig>(t).Validate(t),
            ConfigJson.Load<Qwen3Config>(te).Validate(te),
            ConfigJson.Load<VaeConfig>(v).Validate(v),
            ConfigJson.Load<SchedulerConfig>(s).Validate(s));
    }

    /// <summary>Validates every component config.</summary>
    /// <exception cref="CheckpointConfigurationException">A value is out of range.</exception>
    public ZImageConfig Validate()
    {
        Transformer.Validate();
        TextEncoder.Validate();
        Vae.Validate();
        Scheduler.Validate();
        ConfigJson.Require(Transformer.CapFeatDim == TextEncoder.HiddenSize, "transformer/config.json", "cap_feat_dim",
            $"value {Transformer.CapFeatDim} must equal the text encoder's hidden_size {TextEncoder.HiddenSize}.");
        ConfigJson.Require(Transformer.InChannels == Vae.LatentChannels, "transformer/config.json", "in_channels",
            $"value {Transformer.InChannels} must equal the VAE's latent_channels {Vae.LatentChannels}.");
        return this;
    }
}
