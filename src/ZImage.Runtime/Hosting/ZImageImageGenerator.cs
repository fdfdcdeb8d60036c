// IImageGenerator and its types are experimental in Microsoft.Extensions.AI.Abstractions (MEAI001); this adapter
// tracks them deliberately, so the diagnostic is suppressed for this file only.
#pragma warning disable MEAI001
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using ZImage.Runtime.Pipeline;

namespace ZImage.Runtime.Hosting;

/// <summary>
/// <see cref="IImageGenerator"/> over the registered <see cref="IImagePipeline"/>: text-to-image requests become
/// <see cref="GenerationRequest"/>s and the images come back as PNG <see cref="DataContent"/> carrying the parameters
/// in their text chunks. Options map as follows: <see cref="ImageGenerationOptions.Count"/> → images,
/// <see cref="ImageGenerationOptions.ImageSize"/> → width/height, <see cref="ImageGenerationOptions.MediaType"/> must be
/// <c>image/png</c> (or null), <see cref="ImageGenerationOptions.ModelId"/> must be null or the loaded model's name, and
/// <see cref="ImageGenerationOptions.AdditionalProperties"/> may carry <c>steps</c>, <c>guidance</c>, <c>seed</c>,
/// <c>negative_prompt</c> and <c>mode</c> (<c>turbo</c>/<c>standard</c>/<c>quality</c>).
/// </summary>
public sealed class ZImageImageGenerator : IImageGenerator
{
    /// <summary>The provider name in <see cref="ImageGeneratorMetadata"/>.</summary>
    public const string ProviderName = "zimage";

    private readonly IImagePipeline _pipeline;

    /// <summary>Wraps <paramref name="pipeline"/> (not owned: disposing the generator leaves it running).</summary>
    public ZImageImageGenerator(IImagePipeline pipeline)
    {
        _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        Metadata = new ImageGeneratorMetadata(ProviderName, null, pipeline.Model.ModelName);
    }

    /// <summary>The provider name and the loaded model as the default model id.</summary>
    public ImageGeneratorMetadata Metadata { get; }

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">The request carries original images (edits are not supported yet), or an unsupported media type or response format is asked for.</exception>
    /// <exception cref="InvalidGenerationRequestException">A value is out of range or of the wrong type; the message names it.</exception>
    /// <exception cref="RequestExceedsBudgetException">The request does not fit the memory budget.</exception>
    public async Task<ImageGenerationResponse> GenerateAsync(ImageGenerationRequest request, ImageGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var generation = ToGenerationRequest(request, options, _pipeline.Model.ModelName);
        var result = await _pipeline.GenerateAsync(generation, null, cancellationToken).ConfigureAwait(false);
        var contents = new List<AIContent>(result.Images.Count);
        for (int i = 0; i < result.Images.Count; i++)
            contents.Add(new DataContent(result.EncodePng(i), "image/png") { Name = $"zimage-{result.Seed + i}.png" });
        return new ImageGenerationResponse(contents) { RawRepresentation = result };
    }

    /// <summary>Maps an <see cref="ImageGenerationRequest"/> and its options to a <see cref="GenerationRequest"/> (see the class remarks).</summary>
    public static GenerationRequest ToGenerationRequest(ImageGenerationRequest request, ImageGenerationOptions? options, string modelName)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.OriginalImages is { } originals && originals.Any())
            throw new NotSupportedException("ZImage does not support image edits (OriginalImages) yet: only text-to-image requests are accepted.");
        if (string.IsNullOrWhiteSpace(request.Prompt))
            throw new InvalidGenerationRequestException(nameof(request.Prompt), request.Prompt, "a non-empty prompt");
        if (options?.MediaType is { } mediaType && !string.Equals(mediaType, "image/png", StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"MediaType '{mediaType}' is not supported; ZImage returns image/png.");
        if (options?.ResponseFormat is ImageGenerationResponseFormat.Hosted)
            throw new NotSupportedException("ResponseFormat Hosted is not supported; ZImage returns the image data (a data: URI for Uri).");
        if (options?.ModelId is { } modelId && !string.Equals(modelId, modelName, StringComparison.Ordinal))
            throw new InvalidGenerationRequestException(nameof(options.ModelId), modelId, $"null or the loaded model '{modelName}'");
        var extra = options?.AdditionalProperties;
        string? mode = Get<string>(extra, "mode");
        return new GenerationRequest
        {
            Prompt = request.Prompt,
            NumImages = options?.Count ?? 1,
            Width = options?.ImageSize is { } size ? size.Width : null,
            Height = options?.ImageSize is { } size2 ? size2.Height : null,
            Steps = Get<int>(extra, "steps"),
            Guidance = Get<float>(extra, "guidance"),
            Seed = Get<long>(extra, "seed"),
            NegativePrompt = Get<string>(extra, "negative_prompt"),
            Mode = mode is null ? GenerationMode.Turbo : RequestText.ParseMode(mode),
        };
    }

    // Values arrive as CLR values (set in code) or JsonElements (options deserialized from JSON).
    private static T? Get<T>(IDictionary<string, object?>? extra, string key)
    {
        if (extra is null || !extra.TryGetValue(key, out object? value) || value is null) return default;
        try
        {
            object? converted = value switch
            {
                T t => t,
                JsonElement { ValueKind: JsonValueKind.String } e when typeof(T) == typeof(string) => e.GetString(),
                JsonElement { ValueKind: JsonValueKind.Number } e when typeof(T) == typeof(int) => e.GetInt32(),
                JsonElement { ValueKind: JsonValueKind.Number } e when typeof(T) == typeof(long) => e.GetInt64(),
                JsonElement { ValueKind: JsonValueKind.Number } e when typeof(T) == typeof(float) => (float)e.GetDouble(),
                IConvertible c when typeof(T) != typeof(string) => Convert.ChangeType(c, typeof(T), CultureInfo.InvariantCulture),
                _ => throw new InvalidCastException(),
            };
            return (T?)converted;
        }
        catch (Exception e) when (e is InvalidCastException or FormatException or OverflowException or InvalidOperationException)
        {
            throw new InvalidGenerationRequestException(key, value, typeof(T) == typeof(string) ? "a string" : $"a number convertible to {typeof(T).Name}");
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ImageGeneratorMetadata)) return Metadata;
        if (serviceType.IsInstanceOfType(_pipeline)) return _pipeline;
        if (serviceType.IsInstanceOfType(this)) return this;
        return null;
    }

    /// <summary>Nothing to release: the pipeline belongs to whoever created it (the DI container when registered).</summary>
    public void Dispose() { }
}
