using System.Text.Json;
using System.Text.Json.Serialization;
using ZImage.Runtime.Pipeline;

namespace ZImage.Server;

/// <summary>What the server runs.</summary>
public sealed class ServerInfo(IImagePipeline pipeline)
{
    /// <summary>Printed at start and shown on the page when no model folder is configured.</summary>
    public const string DemoNotice = "No ZImage:ModelDirectory configured: serving a tiny random-weight Z-Image built in memory. This demonstrates the pipeline and the memory guard, not image quality.";

    /// <summary>Whether the tiny random-weight demo model is served.</summary>
    public bool IsDemoModel => pipeline.Model.IsDemoModel;

    /// <summary>The model name reported in responses.</summary>
    public string ModelName => pipeline.Model.ModelName;
}

/// <summary>The JSON conventions of the API: snake_case names (as OpenAI's), enums as strings, nulls left out.</summary>
internal static class ServerJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };
}
