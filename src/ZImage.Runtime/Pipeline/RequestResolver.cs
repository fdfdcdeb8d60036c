using System.Globalization;
using ZImage.Runtime.Hosting;

namespace ZImage.Runtime.Pipeline;

/// <summary>A request after presets, defaults and guards: everything the runner needs.</summary>
/// <param name="Parameters">The effective parameters (seed included).</param>
/// <param name="InitialLatents">Initial latents, if given.</param>
/// <param name="Warnings">What the guards changed.</param>
/// <param name="StepsOrGuidanceReset">Whether the out-of-range policy reset the request to Standard.</param>
internal sealed record ResolvedRequest(GenerationParameters Parameters, LatentTensor? InitialLatents, List<string> Warnings, bool StepsOrGuidanceReset)
{
    /// <summary>The init image, mask and posterior draws of an img2img/inpaint request, else null.</summary>
    public EditInputs? Edit { get; init; }
}

/// <summary>Applies presets and guards to a <see cref="GenerationRequest"/>.</summary>
internal static class RequestResolver
{
    /// <summary>Latent channels of Z-Image (FLUX VAE).</summary>
    public const int LatentChannels = 16;

    /// <summary>Resolves <paramref name="request"/> against <paramref name="options"/>.</summary>
    /// <exception cref="InvalidGenerationRequestException">A value is outside its range and the policy rejects it.</exception>
    public static ResolvedRequest Resolve(GenerationRequest request, ZImageOptions options, bool demoModel, string modelName, Func<long>? seedSource = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Prompt, nameof(request.Prompt));
        var limits = options.Limits;
        var warnings = new List<string>();

        if (request.NumImages < 1 || request.NumImages > limits.MaxImagesPerRequest)
            throw new InvalidGenerationRequestException(nameof(request.NumImages), request.NumImages, $"1..{limits.MaxImagesPerRequest}");
        RequestChecks.WellFormedText(nameof(request.Prompt), request.Prompt);
        RequestChecks.WellFormedText(nameof(request.NegativePrompt), request.NegativePrompt);

        // Size: explicit values win over the named preset, which wins over the configured default.
        var preset = request.Resolution ?? options.Presets.DefaultResolution;
        int defW, defH;
        if (preset is { } p) (defW, defH) = (options.Presets.For(p).Width, options.Presets.For(p).Height);
        else (defW, defH) = demoModel ? (64, 64) : (1024, 1024);
        if (request.InitImage is { } initImage)
            (defW, defH) = (initImage.Width, initImage.Height);
        int width = request.Width ?? defW, height = request.Height ?? defH;
        CheckDimension(nameof(request.Width), width, limits);
        CheckDimension(nameof(request.Height), height, limits);

        var mode = request.Mode;
        if (!Enum.IsDefined(mode))
            throw new InvalidGenerationRequestException(nameof(request.Mode), mode, "Turbo, Standard or Quality");
        var modePreset = options.Presets.For(mode);
        int steps = request.Steps ?? modePreset.Steps;
        float guidance = request.Guidance ?? modePreset.Guidance;
        bool reset = false;
        string? problem = null;
        if (steps < limits.MinSteps || steps > limits.MaxSteps)
            problem = $"steps {steps} is outside {limits.MinSteps}..{limits.MaxSteps}";
        else if (!(guidance >= limits.MinGuidance && guidance <= limits.MaxGuidance))
            problem = $"guidance {F(guidance)} is outside {F(limits.MinGuidance)}..{F(limits.MaxGuidance)}";
        if (problem is not null)
        {
            if (limits.OutOfRange == OutOfRangePolicy.Reject)
            {
                if (steps < limits.MinSteps || steps > limits.MaxSteps)
                    throw new InvalidGenerationRequestException(nameof(request.Steps), steps, $"{limits.MinSteps}..{limits.MaxSteps}");
                throw new InvalidGenerationRequestException(nameof(request.Guidance), guidance, $"{F(limits.MinGuidance)}..{F(limits.MaxGuidance)}");
            }
            mode = GenerationMode.Standard;
            steps = options.Presets.Standard.Steps;
            guidance = options.Presets.Standard.Guidance;
            reset = true;
            warnings.Add($"{problem}; ran as Standard ({steps} steps, guidance {F(guidance)}).");
        }

        if (!float.IsFinite(request.CfgTruncation) || request.CfgTruncation < 0f)
            throw new InvalidGenerationRequestException(nameof(request.CfgTruncation), request.CfgTruncation, "a finite value >= 0 (1.0 = never truncate)");
        if (!float.IsFinite(request.CfgNormalization) || request.CfgNormalization < 0f)
            throw new InvalidGenerationRequestException(nameof(request.CfgNormalization), request.CfgNormalization, "a finite value >= 0 (0 = off)");

        if (request.InitialLatents is { } lat)
        {
            int[] want = [request.NumImages, LatentChannels, height / 8, width / 8];
            if (!lat.Shape.SequenceEqual(want))
                throw new InvalidGenerationRequestException(nameof(request.InitialLatents), $"[{string.Join(",", lat.Shape)}]", $"shape [{string.Join(",", want)}] for {request.NumImages} image(s) of {width}x{height}");
            RequestChecks.FiniteLatents(lat);
        }

        float? strength = EditRequestValidation.Check(request, width, height);

        long seed = request.Seed ?? (seedSource ?? DefaultSeed)();
        RequestChecks.SeedRange(seed, request.NumImages);
        string? negative = guidance > 0f ? request.NegativePrompt ?? "" : null;
        if (guidance <= 0f && !string.IsNullOrEmpty(request.NegativePrompt))
            warnings.Add("the negative prompt is ignored because guidance is 0 (Turbo runs without CFG).");
        var parameters = new GenerationParameters(request.Prompt, negative, mode, width, height, steps, guidance,
            request.CfgTruncation, request.CfgNormalization, seed, request.NumImages, request.InitialLatents is not null, modelName)
        {
            Strength = strength,
            MaskGiven = strength is not null && request.Mask is not null,
        };
        return new ResolvedRequest(parameters, request.InitialLatents, warnings, reset)
        {
            Edit = request.InitImage is { } image ? new EditInputs(image, request.Mask, request.PosteriorNoise) : null,
        };
    }

    private static void CheckDimension(string name, int value, LimitOptions limits)
    {
        if (value % 16 != 0 || value < limits.MinDimension || value > limits.MaxDimension)
            throw new InvalidGenerationRequestException(name, value, $"a multiple of 16 in {limits.MinDimension}..{limits.MaxDimension}");
    }

    // Seeds stay below 2^53 so that they survive a JSON round trip through a double.
    private static long DefaultSeed() => Random.Shared.NextInt64(0, 1L << 53);

    private static string F(float v) => v.ToString("0.###", CultureInfo.InvariantCulture);
}
