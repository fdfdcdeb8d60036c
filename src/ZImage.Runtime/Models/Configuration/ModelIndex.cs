using System.Text.Json;

namespace ZImage.Runtime.Models.Configuration;

/// <summary>One component line of <c>model_index.json</c>: <c>"vae": ["diffusers", "AutoencoderKL"]</c>.</summary>
/// <param name="Library">The library (diffusers, transformers).</param>
/// <param name="ClassName">The class.</param>
public sealed record ModelIndexComponent(string Library, string ClassName);

/// <summary><c>model_index.json</c>: the pipeline class and the class of every component folder.</summary>
public sealed record ModelIndex
{
    /// <summary>Pipeline class expected for a Z-Image checkpoint.</summary>
    public const string ZImagePipelineClass = "ZImagePipeline";

    /// <summary><c>_class_name</c>.</summary>
    public required string ClassName { get; init; }

    /// <summary><c>_diffusers_version</c>, when present.</summary>
    public string? DiffusersVersion { get; init; }

    /// <summary>Components by folder name; entries written as <c>[null, null]</c> (absent optional parts) are left out.</summary>
    public required IReadOnlyDictionary<string, ModelIndexComponent> Components { get; init; }

    /// <summary>The classes each Z-Image component folder may declare.</summary>
    public static IReadOnlyDictionary<string, string[]> ZImageComponentClasses { get; } = new Dictionary<string, string[]>
    {
        ["transformer"] = ["ZImageTransformer2DModel"],
        ["text_encoder"] = ["Qwen3Model", "Qwen3ForCausalLM"],
        ["tokenizer"] = ["Qwen2Tokenizer", "Qwen2TokenizerFast"],
        ["vae"] = ["AutoencoderKL"],
        ["scheduler"] = ["FlowMatchEulerDiscreteScheduler"],
    };

    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointConfigurationException">The file is missing or malformed.</exception>
    public static ModelIndex Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new CheckpointConfigurationException(path, null, "the file does not exist.");
        JsonDocument doc;
        try
        {
            string text = File.ReadAllText(path);
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (JsonStrings.TryFindUnreadableString(System.Text.Encoding.UTF8.GetBytes(text),
                    new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }, out long offset, out string problem))
            {
                doc.Dispose();
                throw new CheckpointConfigurationException(path, null, JsonStrings.Describe(offset, problem) + ".");
            }
        }
        catch (JsonException ex)
        {
            throw new CheckpointConfigurationException(path, null, $"not valid JSON ({ex.Message}).", ex);
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new CheckpointConfigurationException(path, null, "the root is not a JSON object.");
            if (!root.TryGetProperty("_class_name", out JsonElement cls) || cls.ValueKind != JsonValueKind.String)
                throw new CheckpointConfigurationException(path, "_class_name", "missing or not a string.");
            var components = new Dictionary<string, ModelIndexComponent>(StringComparer.Ordinal);
            foreach (JsonProperty p in root.EnumerateObject())
            {
                if (p.Name.StartsWith('_')) continue;
                if (p.Value.ValueKind != JsonValueKind.Array || p.Value.GetArrayLength() != 2)
                    throw new CheckpointConfigurationException(path, p.Name, $"expected [library, class], got {p.Value.GetRawText()}.");
                JsonElement lib = p.Value[0], c = p.Value[1];
                if (lib.ValueKind == JsonValueKind.Null && c.ValueKind == JsonValueKind.Null) continue;
                if (lib.ValueKind != JsonValueKind.String || c.ValueKind != JsonValueKind.String)
                    throw new CheckpointConfigurationException(path, p.Name, $"expected [library, class] strings, got {p.Value.GetRawText()}.");
                components[p.Name] = new ModelIndexComponent(lib.GetString()!, c.GetString()!);
            }
            return new ModelIndex
            {
                ClassName = cls.GetString()!,
                DiffusersVersion = root.TryGetProperty("_diffusers_version", out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null,
                Components = components,
            };
        }
    }

    /// <summary>Checks that this is a Z-Image pipeline with the five expected components and classes.</summary>
    /// <param name="source">The file, for the message.</param>
    /// <exception cref="CheckpointConfigurationException">The pipeline class or a component is missing or unexpected.</exception>
    public ModelIndex ValidateForZImage(string source = "model_index.json")
    {
        ConfigJson.Require(ClassName == ZImagePipelineClass, source, "_class_name", $"value '{ClassName}' is not supported; expected '{ZImagePipelineClass}'.");
        foreach ((string component, string[] classes) in ZImageComponentClasses)
        {
            ConfigJson.Require(Components.TryGetValue(component, out ModelIndexComponent? entry), source, component, "the component is missing.");
            ConfigJson.Require(classes.Contains(entry!.ClassName), source, component, $"class '{entry.ClassName}' is not supported; allowed: {string.Join(", ", classes)}.");
        }
        return this;
    }
}
