using ZImage.Runtime.Budget;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// Text-to-image with Z-Image on one device. Safe to call from many threads: generations run one at a time in FIFO
/// order on the device thread; every request is planned exactly and admitted only if it fits the inference segment.
/// </summary>
/// <remarks>
/// Threading of progress (generation and load alike): <see cref="IProgress{T}.Report"/> is called synchronously, in
/// order, on the pipeline's device thread (generation queue positions also on the thread that submits or cancels),
/// never through a <see cref="SynchronizationContext"/>. Keep the callback short; a UI marshals to its own thread. An
/// exception thrown by the callback fails that start or generation. Passing a <see cref="Progress{T}"/> re-posts each
/// report to the thread pool (or the captured context), where reports may then arrive out of order.
/// </remarks>
public interface IImagePipeline
{
    /// <summary>The model and device.</summary>
    EngineDescription Model { get; }

    /// <summary>Whether <see cref="StartAsync(CancellationToken)"/> has finished (weights loaded, kernels compiled, carve-up measured).</summary>
    bool IsStarted { get; }

    /// <summary>
    /// Loads the weights and compiles the kernels on the device thread, measures the base segment and derives the
    /// inference segment. Idempotent (a failed or cancelled start is retried by the next call);
    /// <see cref="GenerateAsync"/> calls it if nobody did. A host usually lets <c>ZImageHostedService</c> call it at startup.
    /// </summary>
    /// <param name="cancellationToken">Cancels while the load waits for the device thread or between its stages.</param>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="StartAsync(CancellationToken)"/> reporting the load's stages to <paramref name="progress"/>
    /// (<see cref="LoadStage.TextEncoder"/>, <see cref="LoadStage.Transformer"/>, <see cref="LoadStage.Vae"/>,
    /// <see cref="LoadStage.Measuring"/>, <see cref="LoadStage.Ready"/>, once each and in order, on the device thread).
    /// Only the call that begins a load receives its reports: when a start is already running or done, the returned
    /// task is that start's and <paramref name="progress"/> is not called (see <see cref="LastLoadProgress"/>).
    /// </summary>
    /// <param name="progress">Receives the stages; may be null.</param>
    /// <param name="cancellationToken">Cancels while the load waits for the device thread or between its stages; a cancelled load releases everything it allocated.</param>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    Task StartAsync(IProgress<LoadProgress>? progress, CancellationToken cancellationToken = default) => StartAsync(cancellationToken);

    /// <summary>Not started, starting, started or failed (the last start failed or was cancelled; the next one retries).</summary>
    PipelineState State => IsStarted ? PipelineState.Started : PipelineState.NotStarted;

    /// <summary>The last load report of the current or last start (null before any), for hosts that poll rather than subscribe.</summary>
    LoadProgress? LastLoadProgress => null;

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
