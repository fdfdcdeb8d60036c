using System.Text.Json;
using System.Text.Json.Serialization;

namespace ZImage.Runtime.Models.Configuration;

/// <summary>Reads the diffusers / transformers JSON configuration files into the config records.</summary>
public static class ConfigJson
{
    /// <summary>The serializer options used for every config file (comments and trailing commas tolerated, unknown fields ignored).</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        WriteIndented = true,
    };

    /// <summary>Deserializes <paramref name="path"/> into <typeparamref name="T"/>.</summary>
    /// <exception cref="CheckpointConfigurationException">The file is missing, is not JSON, or a field has the wrong type.</exception>
    public static T Load<T>(string path) where T : class
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new CheckpointConfigurationException(path, null, "the file does not exist.");
        try
        {
            byte[] bytes = File.ReadAllBytes(path);
            int start = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
            return JsonSerializer.Deserialize<T>(bytes.AsSpan(start), Options)
                ?? throw new CheckpointConfigurationException(path, null, "the file holds JSON null.");
        }
        catch (JsonException ex)
        {
            throw new CheckpointConfigurationException(path, ex.Path, $"not a valid {typeof(T).Name} ({ex.Message}).", ex);
        }
    }

    /// <summary>Serializes a config record back to JSON (snake_case field names, as the files use).</summary>
    public static string Serialize<T>(T config) => JsonSerializer.Serialize(config, Options);

    internal static void Require([System.Diagnostics.CodeAnalysis.DoesNotReturnIf(false)] bool condition, string source, string field, string problem)
    {
        if (!condition) throw new CheckpointConfigurationException(source, field, problem);
    }

    internal static void RequireRange(long value, long min, long max, string source, string field)
    {
        if (value < min || value > max) throw new CheckpointConfigurationException(source, field, $"value {value} is outside the allowed range [{min}, {max}].");
    }

    internal static void RequirePositive(double value, string source, string field)
    {
        if (!(value > 0) || double.IsInfinity(value)) throw new CheckpointConfigurationException(source, field, $"value {value} must be a finite number > 0.");
    }
}
