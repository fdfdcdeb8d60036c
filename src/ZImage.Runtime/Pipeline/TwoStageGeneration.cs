using System.Globalization;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// A two-stage ("explore small, finish large") generation: <see cref="Request"/> (text-to-image, with its final
/// <see cref="GenerationRequest.Width"/> × <see cref="GenerationRequest.Height"/>) runs first at the explore size with
/// its seed, then the explored image, upscaled bilinearly to the final size, is the init image of a short img2img pass
/// at <see cref="RefineStrength"/> with the same prompt, mode and seed.
/// </summary>
public sealed record TwoStageRequest
{
    /// <summary>The default refine strength: half of the schedule. With Turbo's 8 steps the refine runs steps 4..7
    /// (from the shifted σ₄ = 0.75, so the explored composition survives and the detail is redrawn at the
    /// final size) and costs half a full run at the final size.</summary>
    public const float DefaultRefineStrength = 0.5f;

    /// <summary>The final image: prompt, size (required), mode, steps, guidance, seed. No init image, mask or latents; one image.</summary>
    public required GenerationRequest Request { get; init; }

    /// <summary>Width of the explore pass (default: half the final width, rounded down to a multiple of 16, at least 16).</summary>
    public int? ExploreWidth { get; init; }

    /// <summary>Height of the explore pass (default: half the final height, as <see cref="ExploreWidth"/>).</summary>
    public int? ExploreHeight { get; init; }

    /// <summary>The img2img strength of the refine pass, in (0, 1] (default <see cref="DefaultRefineStrength"/>).</summary>
    public float RefineStrength { get; init; } = DefaultRefineStrength;
}

/// <summary>The two results of a <see cref="TwoStageRequest"/> and the plan that covered both.</summary>
/// <param name="Explore">The small text-to-image result (its seed is the refine's).</param>
/// <param name="Refine">The final img2img result at the requested size.</param>
/// <param name="Plan">The combined plan (<see cref="TwoStageGeneration.Plan"/>): explore stages then refine stages.</param>
public sealed record TwoStageResult(GenerationResult Explore, GenerationResult Refine, MemoryPlan Plan);

/// <summary>
/// Two-stage generation over any <see cref="IImagePipeline"/> whose engine edits images (<c>ZImageOptions.ImageEditing</c>):
/// two ordinary requests, each planned exactly and admitted on its own by the pipeline, so nothing here allocates on
/// the device. The combined <see cref="Plan"/> lists the explore stages (prefixed <c>explore/</c>) and the refine
/// stages (<c>refine/</c>); its request peak is the larger of the two passes' peaks.
/// </summary>
public static class TwoStageGeneration
{
    /// <summary>Prefix of the explore pass's stage names in the combined plan.</summary>
    public const string ExplorePrefix = "explore/";

    /// <summary>Prefix of the refine pass's stage names in the combined plan.</summary>
    public const string RefinePrefix = "refine/";

    /// <summary>Runs the explore pass, upscales its image and runs the refine pass with the same seed.</summary>
    /// <exception cref="InvalidGenerationRequestException">A field is out of range or not allowed in a two-stage request.</exception>
    public static async Task<TwoStageResult> GenerateAsync(this IImagePipeline pipeline, TwoStageRequest request,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var (explore, width, height) = ExploreRequest(request);
        var plan = pipeline.Plan(request);
        var small = await pipeline.GenerateAsync(explore, progress, cancellationToken).ConfigureAwait(false);
        var refine = RefineRequest(request, Upscale(small.Images[0], width, height), small.Seed);
        var large = await pipeline.GenerateAsync(refine, progress, cancellationToken).ConfigureAwait(false);
        return new TwoStageResult(small, large, plan);
    }

    /// <summary>
    /// The exact plan of both passes: the explore pass's stages, then the refine pass's (planned with a blank init image
    /// of the final size, which allocates exactly what the real one does). Carve-up, strategy and host figures are the
    /// refine pass's (the same engine runs both).
    /// </summary>
    /// <exception cref="InvalidGenerationRequestException">A field is out of range or not allowed in a two-stage request.</exception>
    public static MemoryPlan Plan(this IImagePipeline pipeline, TwoStageRequest request)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var (explore, width, height) = ExploreRequest(request);
        var small = pipeline.Plan(explore);
        var large = pipeline.Plan(RefineRequest(request, new RgbImage(width, height, new byte[width * height * 3]), explore.Seed ?? 0));
        return large with
        {
            Stages = [.. small.Stages.Select(s => s with { Name = ExplorePrefix + s.Name }), .. large.Stages.Select(s => s with { Name = RefinePrefix + s.Name })],
            FittingAlternatives = [],
        };
    }

    /// <summary>The explore pass of <paramref name="request"/> and the final size.</summary>
    /// <exception cref="InvalidGenerationRequestException">A field is out of range or not allowed in a two-stage request.</exception>
    public static (GenerationRequest Explore, int Width, int Height) ExploreRequest(TwoStageRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var r = request.Request ?? throw new ArgumentNullException(nameof(request), "TwoStageRequest.Request is required.");
        if (r.Width is not { } width) throw new InvalidGenerationRequestException(nameof(r.Width), "not given", "the final width (a two-stage request names its size)");
        if (r.Height is not { } height) throw new InvalidGenerationRequestException(nameof(r.Height), "not given", "the final height (a two-stage request names its size)");
        if (r.InitImage is not null || r.Mask is not null || r.PosteriorNoise is not null || r.Strength is not null)
            throw new InvalidGenerationRequestException(nameof(r.InitImage), "given", "none: a two-stage request is text-to-image (the refine pass makes its own init image)");
        if (r.InitialLatents is not null)
            throw new InvalidGenerationRequestException(nameof(r.InitialLatents), "given", "none: the explore pass runs at another size");
        if (r.NumImages != 1)
            throw new InvalidGenerationRequestException(nameof(r.NumImages), r.NumImages, "1 (one seed is finished per two-stage request)");
        if (!(request.RefineStrength > 0f && request.RefineStrength <= 1f))
            throw new InvalidGenerationRequestException(nameof(request.RefineStrength), request.RefineStrength, "(0, 1]");
        int w = request.ExploreWidth ?? Half(width), h = request.ExploreHeight ?? Half(height);
        if (w % 16 != 0 || w < 16) throw new InvalidGenerationRequestException(nameof(request.ExploreWidth), w, "a multiple of 16, at least 16");
        if (h % 16 != 0 || h < 16) throw new InvalidGenerationRequestException(nameof(request.ExploreHeight), h, "a multiple of 16, at least 16");
        if (w > width) throw new InvalidGenerationRequestException(nameof(request.ExploreWidth), w, $"at most the final width {width}");
        if (h > height) throw new InvalidGenerationRequestException(nameof(request.ExploreHeight), h, $"at most the final height {height}");
        // One seed for both passes: drawn here when the request leaves it open (below 2^53, as the pipeline's own draws).
        long seed = r.Seed ?? Random.Shared.NextInt64(0, 1L << 53);
        return (r with { Width = w, Height = h, Seed = seed, Resolution = null }, width, height);
    }

    /// <summary>The refine pass: <paramref name="request"/> at its final size from <paramref name="initImage"/> with <paramref name="seed"/>.</summary>
    public static GenerationRequest RefineRequest(TwoStageRequest request, RgbImage initImage, long seed)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(initImage);
        return request.Request with { InitImage = initImage, Strength = request.RefineStrength, Seed = seed, Resolution = null };
    }

    /// <summary>
    /// Bilinear resize with half-pixel centres (PyTorch <c>interpolate(mode='bilinear', align_corners=False)</c>, PIL's
    /// bilinear when enlarging): output pixel (x, y) samples the source at ((x + ½)·w/W − ½, (y + ½)·h/H − ½), clamped
    /// to the edges; values rounded half away from zero.
    /// </summary>
    public static RgbImage Upscale(RgbImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        int sw = image.Width, sh = image.Height;
        var src = image.Pixels;
        var dst = new byte[checked(width * height * 3)];
        var (x0, x1, fx) = Taps(sw, width);
        var (y0, y1, fy) = Taps(sh, height);
        for (int y = 0; y < height; y++)
        {
            int r0 = y0[y] * sw * 3, r1 = y1[y] * sw * 3;
            float wy = fy[y];
            for (int x = 0; x < width; x++)
            {
                int c0 = x0[x] * 3, c1 = x1[x] * 3;
                float wx = fx[x];
                for (int c = 0; c < 3; c++)
                {
                    float top = src[r0 + c0 + c] + (src[r0 + c1 + c] - src[r0 + c0 + c]) * wx;
                    float bottom = src[r1 + c0 + c] + (src[r1 + c1 + c] - src[r1 + c0 + c]) * wx;
                    float v = top + (bottom - top) * wy;
                    dst[(y * width + x) * 3 + c] = (byte)Math.Clamp(MathF.Round(v, MidpointRounding.AwayFromZero), 0f, 255f);
                }
            }
        }
        return new RgbImage(width, height, dst);
    }

    private static (int[] Lo, int[] Hi, float[] Frac) Taps(int source, int target)
    {
        var lo = new int[target];
        var hi = new int[target];
        var frac = new float[target];
        double ratio = source / (double)target;
        for (int i = 0; i < target; i++)
        {
            double s = Math.Max(0, (i + 0.5) * ratio - 0.5);
            int i0 = Math.Min((int)s, source - 1);
            lo[i] = i0;
            hi[i] = Math.Min(i0 + 1, source - 1);
            frac[i] = (float)(s - i0);
        }
        return (lo, hi, frac);
    }

    private static int Half(int size) => Math.Max(16, size / 2 / 16 * 16);

    /// <summary>The plan's one-line summary, e.g. <c>explore 512x512 + refine 1024x1024 at strength 0.5</c>.</summary>
    public static string Describe(TwoStageRequest request)
    {
        var (explore, w, h) = ExploreRequest(request);
        return string.Create(CultureInfo.InvariantCulture, $"explore {explore.Width}x{explore.Height} + refine {w}x{h} at strength {request.RefineStrength:0.###}");
    }
}
