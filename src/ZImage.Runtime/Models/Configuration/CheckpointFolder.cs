using ZImage.Runtime.Models.Safetensors;

namespace ZImage.Runtime.Models.Configuration;

/// <summary>
/// A diffusers-format Z-Image checkpoint folder: <c>model_index.json</c>, the component configs, and the
/// transformer / text_encoder / vae safetensors (single or sharded), opened through memory mapping. Disposing closes
/// the mappings.
/// </summary>
public sealed class CheckpointFolder : IDisposable
{
    private CheckpointFolder(string directory, ModelIndex index, ZImageConfig config, SafetensorsCheckpoint transformer,
        SafetensorsCheckpoint textEncoder, SafetensorsCheckpoint vae)
    {
        Directory = directory;
        ModelIndex = index;
        Config = config;
        Transformer = transformer;
        TextEncoder = textEncoder;
        Vae = vae;
    }

    /// <summary>The checkpoint root.</summary>
    public string Directory { get; }

    /// <summary>The parsed <c>model_index.json</c>.</summary>
    public ModelIndex ModelIndex { get; }

    /// <summary>All component configs.</summary>
    public ZImageConfig Config { get; }

    /// <summary>DiT weights.</summary>
    public SafetensorsCheckpoint Transformer { get; }

    /// <summary>Qwen3 weights.</summary>
    public SafetensorsCheckpoint TextEncoder { get; }

    /// <summary>VAE weights (encoder and decoder).</summary>
    public SafetensorsCheckpoint Vae { get; }

    /// <summary>The tokenizer folder (tokenizer.json, tokenizer_config.json).</summary>
    public string TokenizerDirectory => Path.Combine(Directory, ZImageConfig.TokenizerFolder);

    /// <summary>
    /// Opens <paramref name="directory"/>: loads and validates the configs, maps every component's safetensors and,
    /// unless <paramref name="validateWeights"/> is false, checks every tensor name and shape against the configs.
    /// </summary>
    /// <exception cref="CheckpointConfigurationException">A config file is missing, malformed or out of range.</exception>
    /// <exception cref="SafetensorsFormatException">A weight file or shard index is corrupt.</exception>
    /// <exception cref="CheckpointValidationException">Tensors are missing, unexpected or mis-shaped.</exception>
    public static CheckpointFolder Open(string directory, bool validateWeights = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string dir = Path.GetFullPath(directory);
        ZImageConfig config = ZImageConfig.Load(dir, out ModelIndex index);
        var opened = new List<SafetensorsCheckpoint>();
        try
        {
            SafetensorsCheckpoint Component(string folder)
            {
                string path = Path.Combine(dir, folder);
                if (!System.IO.Directory.Exists(path))
                    throw new CheckpointConfigurationException(dir, folder, $"the component folder '{path}' does not exist.");
                SafetensorsCheckpoint c = SafetensorsCheckpoint.Open(path);
                opened.Add(c);
                return c;
            }
            var folder = new CheckpointFolder(dir, index, config,
                Component(ZImageConfig.TransformerFolder), Component(ZImageConfig.TextEncoderFolder), Component(ZImageConfig.VaeFolder));
            if (validateWeights) folder.ValidateWeights().ThrowIfInvalid(dir);
            return folder;
        }
        catch
        {
            foreach (SafetensorsCheckpoint c in opened) c.Dispose();
            throw;
        }
    }

    /// <summary>Checks every component's tensors against <see cref="ZImageWeightNames"/> without throwing.</summary>
    public CheckpointValidationReport ValidateWeights() => new(
    [
        ZImageWeightNames.Transformer(Config.Transformer).Validate(Transformer),
        ZImageWeightNames.TextEncoder(Config.TextEncoder).Validate(TextEncoder),
        ZImageWeightNames.Vae(Config.Vae).Validate(Vae),
    ]);

    /// <inheritdoc />
    public void Dispose()
    {
        Transformer.Dispose();
        TextEncoder.Dispose();
        Vae.Dispose();
    }
}
