namespace ZImage.Runtime.Pipeline;

/// <summary>The parameters a generation actually ran with (after presets, defaults and policies).</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="NegativePrompt">The negative prompt (null when guidance is off).</param>
/// <param name="Mode">The mode preset the steps/guidance came from.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Steps">Denoising steps.</param>
/// <param name="Guidance">Guidance scale.</param>
/// <param name="CfgTruncation">CFG truncation threshold.</param>
/// <param name="CfgNormalization">CFG normalisation factor (0 = off).</param>
/// <param name="Seed">The seed of image 0 (image i uses Seed + i).</param>
/// <param name="NumImages">Image count.</param>
/// <param name="InitialLatentsGiven">Whether initial latents replaced the seeded noise.</param>
/// <param name="Model">The model that ran (checkpoint folder name, or the tiny random demo model).</param>
public sealed record GenerationParameters(
    string Prompt,
    string? NegativePrompt,
    GenerationMode Mode,
    int Width,
    int Height,
    int Steps,
    float Guidance,
    float CfgTruncation,
    float CfgNormalization,
    long Seed,
    int NumImages,
    bool InitialLatentsGiven,
    string Model)
{
    /// <summary>Whether classifier-free guidance runs (two DiT forwards per step).</summary>
    public bool UsesCfg => Guidance > 0f;

    /// <summary>The img2img/inpaint strength when the run started from an init image, else null (text-to-image).</summary>
    public float? Strength { get; init; }

    /// <summary>Whether an inpaint mask was given (with <see cref="Strength"/>).</summary>
    public bool MaskGiven { get; init; }

    /// <summary>The LoRAs merged into the model, as <c>file:scale</c> in merge order (<c>a.safetensors:0.8, b.safetensors:1</c>), or null when none.</summary>
    public string? Loras { get; init; }
}

/// <summary>Timing and memory of one pipeline stage.</summary>
/// <param name="Name">Stage name: <c>text-encoder</c>, <c>denoise-step-1</c> … <c>denoise-step-N</c>, <c>vae-decode</c>.</param>
/// <param name="Duration">Wall time (summed over images).</param>
/// <param name="PlannedPeakBytes">The workspace peak the plan predicted for this stage.</param>
/// <param name="MeasuredPeakBytes">The workspace peak the allocator measured (max over images).</param>
public sealed record StageReport(string Name, TimeSpan Duration, long PlannedPeakBytes, long MeasuredPeakBytes);

/// <summary>The outcome of <see cref="IImagePipeline.GenerateAsync"/>.</summary>
public sealed class GenerationResult
{
    /// <summary>Creates a result.</summary>
    public GenerationResult(IReadOnlyList<RgbImage> images, GenerationParameters parameters, IReadOnlyList<string> warnings,
        IReadOnlyList<StageReport> stages, TimeSpan queueTime, TimeSpan totalTime, MemoryPlan plan)
    {
        Images = images ?? throw new ArgumentNullException(nameof(images));
        Parameters = parameters ?? throw new ArgumentNullException(nameof(parameters));
        Warnings = warnings ?? throw new ArgumentNullException(nameof(warnings));
        Stages = stages ?? throw new ArgumentNullException(nameof(stages));
        QueueTime = queueTime;
        TotalTime = totalTime;
        Plan = plan ?? throw new ArgumentNullException(nameof(plan));
    }

    /// <summary>The images (RGB8), one per requested image.</summary>
    public IReadOnlyList<RgbImage> Images { get; }

    /// <summary>The effective parameters, including the seed used.</summary>
    public GenerationParameters Parameters { get; }

    /// <summary>The seed of image 0.</summary>
    public long Seed => Parameters.Seed;

    /// <summary>What the pipeline changed or noticed (e.g. "steps 80 is outside 1..50; ran as Standard").</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Per stage: duration, planned and measured workspace peak.</summary>
    public IReadOnlyList<StageReport> Stages { get; }

    /// <summary>Time spent waiting for the device.</summary>
    public TimeSpan QueueTime { get; }

    /// <summary>Time from submission to completion.</summary>
    public TimeSpan TotalTime { get; }

    /// <summary>The memory plan the request was admitted on.</summary>
    public MemoryPlan Plan { get; }

    /// <summary>Encodes image <paramref name="index"/> as PNG with the parameters in text chunks (see <see cref="PngMetadata"/>).</summary>
    public byte[] EncodePng(int index = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Images.Count);
        return PngMetadata.Encode(Images[index], PngMetadata.FromParameters(Parameters with { Seed = Parameters.Seed + index }));
    }

    /// <summary>Writes image <paramref name="index"/> as PNG to <paramref name="path"/>, creating the folder.</summary>
    public async Task SavePngAsync(string path, int index = 0, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        await File.WriteAllBytesAsync(path, EncodePng(index), cancellationToken).ConfigureAwait(false);
    }
}
