using System.Text.Json;
using Microsoft.Extensions.Options;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;

namespace ZImage.Server;

/// <summary>
/// <c>POST /v1/images/generations</c>: the OpenAI Images API request (<c>prompt</c>, <c>n</c>, <c>size</c>,
/// <c>response_format</c>, <c>model</c>; <c>quality</c>, <c>style</c>, <c>user</c>… are accepted and ignored) plus
/// ZImage's fields (<c>negative_prompt</c>, <c>steps</c>, <c>guidance</c>, <c>seed</c>, <c>mode</c>), answered in
/// OpenAI's response and error shapes.
/// </summary>
internal static class ImagesEndpoints
{
    /// <summary>Header the page sends so that the events can tell a page its own job from another's.</summary>
    public const string ClientHeader = "X-ZImage-Client";

    public static void Map(WebApplication app)
    {
        app.MapPost("/v1/images/generations", GenerateAsync);
        app.MapPost("/v1/images/edits", EditAsync);
    }

    private static async Task<IResult> GenerateAsync(HttpContext http, IImagePipeline pipeline, ServerEvents events, IOptions<ZImageOptions> options)
    {
        WireRequest wire;
        try
        {
            using var doc = await JsonDocument.ParseAsync(http.Request.Body, default, http.RequestAborted);
            wire = WireRequest.Parse(doc.RootElement);
        }
        catch (JsonException e)
        {
            return OpenAiError.Result(400, "The request body is not valid JSON: " + e.Message, null, "invalid_json");
        }
        catch (WireException e)
        {
            return OpenAiError.Result(400, e.Message, e.Param, e.Code);
        }
        return await RunAsync(http, wire, null, pipeline, events, options.Value);
    }

    /// <summary>
    /// <c>POST /v1/images/edits</c>: OpenAI's edit request (multipart: <c>image</c> (or <c>image[]</c>, one file),
    /// optional <c>mask</c>, <c>prompt</c>, <c>n</c>, <c>size</c>, <c>response_format</c>, <c>model</c>) plus ZImage's
    /// fields (<c>strength</c>, <c>steps</c>, <c>guidance</c>, <c>seed</c>, <c>negative_prompt</c>, <c>mode</c>): img2img,
    /// or inpaint with a mask. The mask marks the pixels to repaint with alpha 0 (OpenAI) or white (grey ≥ 128, when it has
    /// no transparency); see <see cref="EditImageCodec.DecodeMask"/>. The output has the image's size.
    /// </summary>
    private static async Task<IResult> EditAsync(HttpContext http, IImagePipeline pipeline, ServerEvents events, IOptions<ZImageOptions> options)
    {
        if (!http.Request.HasFormContentType)
            return OpenAiError.Result(400, "The edit request must be multipart/form-data with an image file (field image) and a prompt.", null, "invalid_content_type");
        WireRequest wire;
        WireEdit edit;
        try
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            wire = WireRequest.FromForm(form);
            edit = await WireEdit.FromFormAsync(form, http.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException or IOException && !http.RequestAborted.IsCancellationRequested)
        {
            return OpenAiError.Result(400, "The multipart body cannot be read: " + e.Message, null, "invalid_form");
        }
        catch (WireException e)
        {
            return OpenAiError.Result(400, e.Message, e.Param, e.Code);
        }
        return await RunAsync(http, wire, edit, pipeline, events, options.Value);
    }

    // Both endpoints: build the request, run it (one job in the events), map every library error to OpenAI's shape.
    private static async Task<IResult> RunAsync(HttpContext http, WireRequest wire, WireEdit? edit, IImagePipeline pipeline, ServerEvents events, ZImageOptions options)
    {
        var ct = http.RequestAborted;
        GenerationRequest request;
        try
        {
            request = wire.ToRequest();
            if (edit is not null) request = request with { InitImage = edit.Image, Mask = edit.Mask, Strength = edit.Strength };
        }
        catch (InvalidGenerationRequestException e)
        {
            return InvalidValue(e, wire, edit);
        }

        string client = http.Request.Headers[ClientHeader].FirstOrDefault() ?? "";
        var job = events.NewJob(client);
        GenerationResult result;
        try
        {
            result = await pipeline.GenerateAsync(request, job, ct);
        }
        catch (InvalidGenerationRequestException e)
        {
            return InvalidValue(e, wire, edit);
        }
        catch (RequestExceedsBudgetException e)
        {
            return OpenAiError.Result(400, e.Message, edit is not null && wire.Size is null ? "image" : "size", "exceeds_memory_budget", new Dictionary<string, object?>
            {
                ["needs_more_bytes"] = e.NeedsMoreBytes,
                ["needs_more"] = ByteSize.Format(e.NeedsMoreBytes),
                ["fits"] = e.Plan.FittingAlternatives,
            });
        }
        catch (PipelineBusyException e)
        {
            http.Response.Headers.RetryAfter = events.RetryAfterSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
            return OpenAiError.Result(503, e.Message + " A single device runs one generation at a time.", null, "queue_full", type: "server_error");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return Results.Empty;
        }
        finally
        {
            job.Finish();
        }

        var notice = ResetNotice(wire, request, result, pipeline, options);
        var p = result.Parameters;
        var data = new List<Dictionary<string, object?>>();
        for (int i = 0; i < result.Images.Count; i++)
        {
            string b64 = Convert.ToBase64String(result.EncodePng(i));
            data.Add(wire.ResponseFormat == "url"
                ? new() { ["url"] = "data:image/png;base64," + b64, ["revised_prompt"] = p.Prompt }
                : new() { ["b64_json"] = b64, ["revised_prompt"] = p.Prompt });
        }
        return Results.Json(new Dictionary<string, object?>
        {
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["data"] = data,
            ["output_format"] = "png",
            ["size"] = $"{p.Width}x{p.Height}",
            ["zimage"] = new Dictionary<string, object?>
            {
                ["job"] = job.Id,
                ["parameters"] = p,
                ["warnings"] = result.Warnings,
                ["reset"] = notice,
                ["queue_ms"] = (long)result.QueueTime.TotalMilliseconds,
                ["total_ms"] = (long)result.TotalTime.TotalMilliseconds,
                ["peak_bytes"] = result.Plan.RequestPeakBytes,
                ["inference_bytes"] = result.Plan.InferenceBytes,
            },
        }, ServerJson.Options);
    }

    // An edit without a size takes the image's: a size error is then the image's fault, and says so.
    private static IResult InvalidValue(InvalidGenerationRequestException e, WireRequest wire, WireEdit? edit)
    {
        string param = RequestText.WireName(e.ParamName);
        if (param == "size" && edit is not null && wire.Size is null)
            return OpenAiError.Result(400, $"image is {edit.Image.Width}x{edit.Image.Height}, which is the output size (init images are not resized): {e.Message}", "image", "invalid_value");
        return OpenAiError.Result(400, e.Message, param, "invalid_value");
    }

    // The reset policy ran the request as Standard: say so, and how much more memory the rejected settings needed
    // than what ran (planned exactly with the rejected values clamped into range; steps do not change the peak).
    private static Dictionary<string, object?>? ResetNotice(WireRequest wire, GenerationRequest request, GenerationResult result, IImagePipeline pipeline, ZImageOptions options)
    {
        var limits = options.Limits;
        var preset = options.Presets.For(request.Mode);
        int steps = request.Steps ?? preset.Steps;
        float guidance = request.Guidance ?? preset.Guidance;
        bool stepsOut = steps < limits.MinSteps || steps > limits.MaxSteps;
        bool guidanceOut = !(guidance >= limits.MinGuidance && guidance <= limits.MaxGuidance);
        if (!stepsOut && !guidanceOut) return null;
        var rejected = request with
        {
            Steps = Math.Clamp(steps, limits.MinSteps, limits.MaxSteps),
            Guidance = float.IsFinite(guidance) ? Math.Clamp(guidance, limits.MinGuidance, limits.MaxGuidance) : limits.MaxGuidance,
            Seed = result.Seed,
        };
        long rejectedPeak = pipeline.Plan(rejected).RequestPeakBytes;
        long extra = Math.Max(0, rejectedPeak - result.Plan.RequestPeakBytes);
        return new Dictionary<string, object?>
        {
            ["message"] = result.Warnings.FirstOrDefault(w => w.Contains("ran as Standard", StringComparison.Ordinal)) ?? "ran as Standard",
            ["requested_mode"] = wire.Mode ?? request.Mode.ToString().ToLowerInvariant(),
            ["requested_steps"] = steps,
            ["requested_guidance"] = guidance,
            ["extra_memory_bytes"] = extra,
            ["extra_memory"] = ByteSize.Format(extra),
            ["rejected_peak_bytes"] = rejectedPeak,
        };
    }
}

/// <summary>OpenAI's error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
internal static class OpenAiError
{
    public static IResult Result(int status, string message, string? param, string? code, IReadOnlyDictionary<string, object?>? extra = null, string type = "invalid_request_error")
    {
        var error = new Dictionary<string, object?> { ["message"] = message, ["type"] = type, ["param"] = string.IsNullOrEmpty(param) ? null : param, ["code"] = code };
        if (extra is not null)
            foreach (var (k, v) in extra) error[k] = v;
        // Written with nulls kept: OpenAI clients expect "param": null rather than a missing key.
        return Results.Json(new Dictionary<string, object?> { ["error"] = error }, (JsonSerializerOptions?)null, statusCode: status);
    }
}

/// <summary>A field of the request body has the wrong JSON type or value.</summary>
internal sealed class WireException(string param, string message, string code = "invalid_value") : Exception(message)
{
    public string Param { get; } = param;

    public string Code { get; } = code;
}

/// <summary>The request body, read field by field so that every error names its field.</summary>
internal sealed record WireRequest(string Prompt, int N, string? Size, string ResponseFormat, string? NegativePrompt, int? Steps, float? Guidance, long? Seed, string? Mode)
{
    public static WireRequest Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new WireException("", "The request body must be a JSON object.");
        string prompt = Str(root, "prompt") ?? throw new WireException("prompt", "prompt is required (a non-empty string).");
        if (string.IsNullOrWhiteSpace(prompt)) throw new WireException("prompt", "prompt must not be empty.");
        string format = Str(root, "response_format") ?? "b64_json";
        if (format is not ("b64_json" or "url"))
            throw new WireException("response_format", $"response_format = \"{format}\" is invalid; allowed: \"b64_json\" or \"url\".");
        if (Str(root, "output_format") is { } of && of != "png")
            throw new WireException("output_format", $"output_format = \"{of}\" is invalid; this server writes \"png\" only.");
        if (root.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
            throw new WireException("stream", "stream = true is not supported; follow GET /v1/events for progress and previews.");
        string? size = Str(root, "size");
        if (size == "auto") size = null;
        return new WireRequest(prompt, (int?)Int(root, "n") ?? 1, size, format, Str(root, "negative_prompt"),
            (int?)Int(root, "steps"), Num(root, "guidance"), Int(root, "seed"), Str(root, "mode"));
    }

    /// <summary>The same fields from a multipart form (the edit endpoint): every value is text there.</summary>
    public static WireRequest FromForm(IFormCollection form)
    {
        string prompt = FormStr(form, "prompt") ?? throw new WireException("prompt", "prompt is required (a non-empty string).");
        if (string.IsNullOrWhiteSpace(prompt)) throw new WireException("prompt", "prompt must not be empty.");
        string format = FormStr(form, "response_format") ?? "b64_json";
        if (format is not ("b64_json" or "url"))
            throw new WireException("response_format", $"response_format = \"{format}\" is invalid; allowed: \"b64_json\" or \"url\".");
        if (FormStr(form, "output_format") is { } of && of != "png")
            throw new WireException("output_format", $"output_format = \"{of}\" is invalid; this server writes \"png\" only.");
        if (FormStr(form, "stream") is { } stream && stream.Equals("true", StringComparison.OrdinalIgnoreCase))
            throw new WireException("stream", "stream = true is not supported; follow GET /v1/events for progress and previews.");
        string? size = FormStr(form, "size");
        if (size == "auto") size = null;
        return new WireRequest(prompt, FormNum(form, "n", int.Parse) ?? 1, size, format,
            FormStr(form, "negative_prompt"), FormNum(form, "steps", int.Parse), FormNum(form, "guidance", float.Parse),
            FormNum(form, "seed", long.Parse), FormStr(form, "mode"));
    }

    internal static string? FormStr(IFormCollection form, string name)
    {
        if (!form.TryGetValue(name, out var values) || values.Count == 0) return null;
        if (values.Count > 1) throw new WireException(name, $"{name} is given {values.Count} times; give it once.");
        return values[0];
    }

    internal static T? FormNum<T>(IFormCollection form, string name, Func<string, System.Globalization.NumberStyles, IFormatProvider, T> parse) where T : struct
    {
        if (FormStr(form, name) is not { } text || text.Length == 0) return null;
        try
        {
            return parse(text.Trim(), typeof(T) == typeof(float) ? System.Globalization.NumberStyles.Float : System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new WireException(name, $"{name} = \"{text}\" is not {(typeof(T) == typeof(float) ? "a number" : "an integer")}{(e is OverflowException ? " in range" : "")}.");
        }
    }

    public GenerationRequest ToRequest()
    {
        (int? w, int? h) = Size is null ? ((int?)null, (int?)null) : RequestText.ParseSize(Size);
        return new GenerationRequest
        {
            Prompt = Prompt,
            NumImages = N,
            Width = w,
            Height = h,
            NegativePrompt = NegativePrompt,
            Steps = Steps,
            Guidance = Guidance,
            Seed = Seed,
            Mode = Mode is null ? GenerationMode.Turbo : RequestText.ParseMode(Mode),
        };
    }

    private static string? Str(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new WireException(name, $"{name} must be a string; got {v.ValueKind.ToString().ToLowerInvariant()}.");
    }

    private static long? Int(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x))
        {
            if (name != "seed" && (x < int.MinValue || x > int.MaxValue)) throw new WireException(name, $"{name} = {x} is out of range.");
            return x;
        }
        throw new WireException(name, $"{name} must be an integer; got {v.GetRawText()}.");
    }

    private static float? Num(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double x) ? (float)x : throw new WireException(name, $"{name} must be a number; got {v.GetRawText()}.");
    }
}

/// <summary>The edit endpoint's uploads and strength, decoded.</summary>
internal sealed record WireEdit(RgbImage Image, MaskImage? Mask, float? Strength)
{
    public static async Task<WireEdit> FromFormAsync(IFormCollection form, CancellationToken ct)
    {
        var images = form.Files.GetFiles("image").Concat(form.Files.GetFiles("image[]")).ToList();
        if (images.Count == 0)
            throw new WireException("image", form.ContainsKey("image")
                ? "image must be a file part (multipart filename=...), not a text field."
                : "image is required: the PNG/JPEG to edit, as a multipart file.");
        if (images.Count > 1)
            throw new WireException("image", $"{images.Count} images were given; this server edits one image per request.");
        var masks = form.Files.GetFiles("mask");
        if (masks.Count > 1) throw new WireException("mask", $"{masks.Count} masks were given; give one.");
        RgbImage image;
        MaskImage? mask = null;
        try
        {
            image = EditImageCodec.DecodeImage(await ReadAsync(images[0], ct), "image");
        }
        catch (InvalidImageException e)
        {
            throw new WireException("image", e.Message, "invalid_image_format");
        }
        if (masks.Count == 1)
        {
            try
            {
                mask = EditImageCodec.DecodeMask(await ReadAsync(masks[0], ct), "mask");
            }
            catch (InvalidImageException e)
            {
                throw new WireException("mask", e.Message, "invalid_image_format");
            }
        }
        else if (form.ContainsKey("mask"))
        {
            throw new WireException("mask", "mask must be a file part (multipart filename=...), not a text field.");
        }
        return new WireEdit(image, mask, WireRequest.FormNum(form, "strength", float.Parse));
    }

    private static async Task<byte[]> ReadAsync(IFormFile file, CancellationToken ct)
    {
        using var buffer = new MemoryStream((int)Math.Min(file.Length, int.MaxValue));
        await file.CopyToAsync(buffer, ct);
        return buffer.ToArray();
    }
}
