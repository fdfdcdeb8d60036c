using ZImage.Runtime.Budget;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// Text-to-image with Z-Image on one device. Safe to call from many threads: generations run one at a time in FIFO
/// order on the device thread; every request is planned exactly and admitted only if it fits the inference segment.
/// </summary>
public interface IImagePipeline
{
    /// <summary>The model and device.</summary>
    EngineDescription Model { get; }

    /// <summary>The device memory now: the carve-up (reserve, base, inference, buffer, free) with bytes, fractions and the Green/Yellow/Gray/Red state.</summary>
    MemorySnapshot Memory { get; }

    /// <summary>Generates the images of <paramref name="request"/>.</summary>
    /// <param name="request">What to generate.</param>
    /// <param name="progress">Queue position, stage, step i/N, elapsed time and optional previews; reported from the device thread.</param>
    /// <param name="cancellationToken">Cancels while queued or between stages and steps; everything allocated is released.</param>
    /// <exception cref="InvalidGenerationRequestException">A value is out of range and the policy rejects it.</exception>
    /// <exception cref="RequestExceedsBudgetException">The exact plan does not fit the inference segment (policy Reject).</exception>
    /// <exception cref="PipelineBusyException">The queue is full (policy Reject).</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// The exact memory plan of <paramref name="request"/> (after presets and policies): the pipeline runs in planning
    /// mode on a simulated device with the same allocator settings, so each stage peak is what a real run allocates.
    /// </summary>
    MemoryPlan Plan(GenerationRequest request);
}
