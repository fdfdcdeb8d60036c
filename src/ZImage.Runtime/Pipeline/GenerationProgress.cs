namespace ZImage.Runtime.Pipeline;

/// <summary>Where a generation is.</summary>
public enum GenerationStage
{
    /// <summary>Waiting in the device queue; see <see cref="GenerationProgress.QueuePosition"/>.</summary>
    Queued,
    /// <summary>Running the Qwen3 text encoder on the prompt (and negative prompt).</summary>
    EncodingPrompt,
    /// <summary>Running a denoising step of the DiT.</summary>
    Denoising,
    /// <summary>Decoding latents to pixels with the VAE.</summary>
    Decoding,
    /// <summary>Done; the result is about to be returned.</summary>
    Completed,
}

/// <summary>A progress report. Reported from the device worker thread, never from a static event.</summary>
/// <param name="Stage">The current stage.</param>
/// <param name="QueuePosition">While queued, 1 = next to run; 0 once running.</param>
/// <param name="Step">Denoising steps finished for the current image (0..<paramref name="TotalSteps"/>).</param>
/// <param name="TotalSteps">Denoising steps per image.</param>
/// <param name="ImageIndex">The image being generated (0-based).</param>
/// <param name="ImageCount">Images in the request.</param>
/// <param name="Elapsed">Time since the request was submitted.</param>
/// <param name="Preview">A cheap latent-space preview (a linear latent→RGB projection at 1/8 size) after a step, when previews are enabled.</param>
public sealed record GenerationProgress(
    GenerationStage Stage,
    int QueuePosition,
    int Step,
    int TotalSteps,
    int ImageIndex,
    int ImageCount,
    TimeSpan Elapsed,
    RgbImage? Preview = null);
