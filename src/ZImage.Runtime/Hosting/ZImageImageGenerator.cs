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
/// <para>
/// Edits: <see cref="ImageGenerationRequest.OriginalImages"/> holds the init image as a <see cref="DataContent"/>
/// (PNG, JPEG, BMP, TGA or GIF bytes) and runs img2img; a second <see cref="DataContent"/> in it, or
/// <c>AdditionalProperties["mask"]</c> (a <see cref="DataContent"/>, <c>byte[]</c> or <c>ReadOnlyMemory&lt;byte&gt;</c> of an
/// encoded image), is the inpaint mask: alpha 0 marks the pixels to repaint when the mask has transparency (OpenAI's
/// convention), otherwise white (grey ≥ 128, diffusers' convention), see <see cref="EditImageCodec.DecodeMask"/>.
/// <c>AdditionalProperties["strength"]</c> sets <see cref="GenerationRequest.Strength"/> (0, 1] (default 0.6). The
/// output has the image's size. The pipeline must have editing enabled (<see cref="ZImageOptions.ImageEditing"/>).
/// </para>
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
    /// <exception cref="NotSupportedException">An original image is not a <see cref="DataContent"/>, or an unsupported media type or response format is asked for.</exception>
    /// <exception cref="InvalidGenerationRequestException">A value is out of range or of the wrong type, or the pipeline has editing disabled; the message names it.</exception>
    /// <exception cref="InvalidImageException">An original image or the mask is not a readable image.</exception>
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
        var (image, mask) = EditInputs(request.OriginalImages, extra);
        return new GenerationRequest
        {
            InitImage = image,
            Mask = mask,
            Strength = Get<float?>(extra, "strength"),
            Prompt = request.Prompt,
            NumImages = options?.Count ?? 1,
            Width = options?.ImageSize is { } size ? size.Width : null,
            Height = options?.ImageSize is { } size2 ? size2.Height : null,
            Steps = Get<int?>(extra, "steps"),
            Guidance = Get<float?>(extra, "guidance"),
            Seed = Get<long?>(extra, "seed"),
            NegativePrompt = Get<string>(extra, "negative_prompt"),
            Mode = mode is null ? GenerationMode.Turbo : RequestText.ParseMode(mode),
        };
    }

    // OriginalImages = [image] or [image, mask]; the mask may come as AdditionalProperties["mask"] instead.
    private static (RgbImage? Image, MaskImage? Mask) EditInputs(IEnumerable<AIContent>? originals, IDictionary<string, object?>? extra)
    {
        var list = originals?.ToList() ?? [];
        object? maskProperty = extra is not null && extra.TryGetValue("mask", out object? m) ? m : null;
        if (list.Count == 0)
        {
            if (maskProperty is not null)
                throw new InvalidGenerationRequestException("mask", "given", "only together with an init image in OriginalImages");
            return (null, null);
        }
        if (list.Count > 2)
            throw new InvalidGenerationRequestException(nameof(ImageGenerationRequest.OriginalImages), $"{list.Count} images", "one image (img2img), or an image and its mask (inpaint)");
        if (list.Count == 2 && maskProperty is not null)
            throw new InvalidGenerationRequestException("mask", "given twice", "the mask either as OriginalImages[1] or as AdditionalProperties[\"mask\"], not both");
        var image = EditImageCodec.DecodeImage(Bytes(list[0], "OriginalImages[0]"), "OriginalImages[0]");
        MaskImage? mask = list.Count == 2 ? EditImageCodec.DecodeMask(Bytes(list[1], "OriginalImages[1]"), "OriginalImages[1]")
            : maskProperty is null ? null : EditImageCodec.DecodeMask(Bytes(maskProperty, "AdditionalProperties[\"mask\"]"), "AdditionalProperties[\"mask\"]");
        return (image, mask);
    }

    private static byte[] Bytes(object content, string name) => content switch
    {
        DataContent data => data.Data.ToArray(),
        byte[] bytes => bytes,
        ReadOnlyMemory<byte> memory => memory.ToArray(),
        AIContent other => throw new NotSupportedException($"{name} is a {other.GetType().Name}; ZImage reads images from DataContent (the encoded bytes), not from URIs."),
        _ => throw new InvalidGenerationRequestException(name, content.GetType().Name, "a DataContent, byte[] or ReadOnlyMemory<byte> of an encoded image"),
    };

    // Values arrive as CLR values (set in code) or JsonElements (options deserialized from JSON). T is string or a
    // nullable number: a missing key is null, so the mode preset and a random seed apply.
    private static T? Get<T>(IDictionary<string, object?>? extra, string key)
    {
        if (extra is null || !extra.TryGetValue(key, out object? value) || value is null) return default;
        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        try
        {
            object? converted = value switch
            {
                T t => t,
                JsonElement { ValueKind: JsonValueKind.String } e when target == typeof(string) => e.GetString(),
                JsonElement { ValueKind: JsonValueKind.Number } e when target == typeof(int) => e.GetInt32(),
                JsonElement { ValueKind: JsonValueKind.Number } e when target == typeof(long) => e.GetInt64(),
                JsonElement { ValueKind: JsonValueKind.Number } e when target == typeof(float) => (float)e.GetDouble(),
                IConvertible c when target != typeof(string) => Convert.ChangeType(c, target, CultureInfo.InvariantCulture),
                _ => throw new InvalidCastException(),
            };
            return (T?)converted;
        }
        catch (Exception e) when (e is InvalidCastException or FormatException or OverflowException or InvalidOperationException)
        {
            throw new InvalidGenerationRequestException(key, value, target == typeof(string) ? "a string" : $"a number convertible to {target.Name}");
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
