namespace ZImage.Runtime.Pipeline;

/// <summary>What a pipeline start is doing (see <see cref="LoadProgress"/>), in the order the stages run.</summary>
public enum LoadStage
{
    /// <summary>Loading the text encoder's weights (Qwen3) and compiling its kernels.</summary>
    TextEncoder,
    /// <summary>Loading the diffusion transformer's weights.</summary>
    Transformer,
    /// <summary>Loading the VAE decoder (and encoder, with image editing) and the preview projection.</summary>
    Vae,
    /// <summary>Weights are resident: measuring the base segment and deriving the inference segment.</summary>
    Measuring,
    /// <summary>Started: the pipeline admits generations.</summary>
    Ready,
}

/// <summary>Where a pipeline start stands.</summary>
public enum PipelineState
{
    /// <summary>No start has run yet (the next <see cref="IImagePipeline.StartAsync(CancellationToken)"/> or generation starts it).</summary>
    NotStarted,
    /// <summary>A start is waiting for the device thread or loading.</summary>
    Starting,
    /// <summary>Loaded and measured.</summary>
    Started,
    /// <summary>The last start failed or was cancelled; everything it allocated was released and the next start retries.</summary>
    Failed,
}

/// <summary>
/// One report of a pipeline start (<see cref="IImagePipeline.StartAsync(IProgress{LoadProgress}, CancellationToken)"/>):
/// the stage that begins now, how many of the <see cref="TotalStages"/> are done, the device bytes the allocator
/// holds at that moment and the time since the load began on the device thread. A start reports
/// <see cref="LoadStage.TextEncoder"/>, <see cref="LoadStage.Transformer"/>, <see cref="LoadStage.Vae"/>,
/// <see cref="LoadStage.Measuring"/> and <see cref="LoadStage.Ready"/> once each, in that order.
/// </summary>
/// <param name="Stage">The stage that begins (or, for <see cref="LoadStage.Ready"/>, that the start finished).</param>
/// <param name="CompletedStages">Stages done before this one: 0 for the text encoder … <see cref="TotalStages"/> for Ready.</param>
/// <param name="ResidentBytes">Device bytes reserved by the allocator when reported (the weights loaded so far).</param>
/// <param name="Elapsed">Time since the load began on the device thread.</param>
public sealed record LoadProgress(LoadStage Stage, int CompletedStages, long ResidentBytes, TimeSpan Elapsed)
{
    /// <summary>The number of stages before <see cref="LoadStage.Ready"/> (4).</summary>
    public const int TotalStages = (int)LoadStage.Ready;

    /// <summary>The fraction done, 0..1 (by stage, not by bytes).</summary>
    public double Fraction => (double)CompletedStages / TotalStages;
}
