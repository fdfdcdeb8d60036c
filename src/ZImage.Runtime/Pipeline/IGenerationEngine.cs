using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;

namespace ZImage.Runtime.Pipeline;

/// <summary>What an engine is running on and with.</summary>
/// <param name="ModelName">The checkpoint folder name, or <c>tiny-random</c> for the in-memory demo model.</param>
/// <param name="DeviceName">The device (e.g. <c>cuda:0 NVIDIA H100</c>, <c>cpu</c>, <c>simulated(24 GiB)</c>).</param>
/// <param name="IsDemoModel">Whether this is the tiny random-weight demo model (shows the pipeline and the memory guard, not image quality).</param>
/// <param name="TokenizerNote">How prompts are tokenised (e.g. the Qwen2 BPE of the checkpoint, or the documented byte-level fallback).</param>
public sealed record EngineDescription(string ModelName, string DeviceName, bool IsDemoModel, string TokenizerNote);

/// <summary>The allocator's view of device memory, as the pipeline needs it.</summary>
/// <param name="DeviceTotalBytes">Device capacity.</param>
/// <param name="WeightBytes">Bytes allocated for resident weights (the base segment).</param>
/// <param name="AllocatedBytes">All bytes allocated now (weights + workspace).</param>
/// <param name="ReservedBytes">Bytes the allocator holds from the device (segments, including its cache).</param>
/// <param name="PeakWorkspaceBytes">Peak of allocated − weight bytes since the last <see cref="IGenerationEngine.ResetPeakStats"/>.</param>
/// <param name="AllocRetries">Times the allocator freed its cache and retried a device allocation.</param>
/// <param name="OutOfMemoryCount">Allocations that failed after every retry.</param>
/// <param name="DeviceFreeBytes">Device free bytes as the backend reports them (the driver on CUDA), or -1 when unknown.</param>
public readonly record struct EngineMemoryStats(long DeviceTotalBytes, long WeightBytes, long AllocatedBytes, long ReservedBytes,
    long PeakWorkspaceBytes, long AllocRetries, long OutOfMemoryCount, long DeviceFreeBytes = -1)
{
    /// <summary>Workspace bytes allocated now.</summary>
    public long WorkspaceBytes => AllocatedBytes - WeightBytes;
}

/// <summary>
/// The seam between the pipeline (queue, guards, presets, progress, cancellation, plans, PNG) and the model stages.
/// One instance owns one device allocator and is used by one thread at a time (the pipeline's device worker).
/// The same calls run for real and, on the engine from <see cref="CreatePlanner"/>, in planning mode on a simulated
/// device with the same allocator policy, so both make the identical sequence of allocations.
/// </summary>
public interface IGenerationEngine : IDisposable
{
    /// <summary>Model, device and tokenizer.</summary>
    EngineDescription Description { get; }

    /// <summary>Whether this is a planning engine (no kernels, no data).</summary>
    bool IsPlanning { get; }

    /// <summary>Loads the weights onto the device and compiles the kernels (warm-up), so no generation pays for either.</summary>
    /// <param name="budget">When given, every device allocation goes through a <see cref="BudgetedAllocator"/> on it (weights count toward the base, workspace is held to the inference segment).</param>
    /// <param name="cancellationToken">Cancels loading.</param>
    void Load(BudgetGuard? budget, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="Load(BudgetGuard?, CancellationToken)"/> reporting <see cref="LoadStage.TextEncoder"/>,
    /// <see cref="LoadStage.Transformer"/> and <see cref="LoadStage.Vae"/> synchronously on the loading thread as each
    /// begins. An engine without stages reports nothing (the default).
    /// </summary>
    void Load(BudgetGuard? budget, Action<LoadStage>? stageStarting, CancellationToken cancellationToken) => Load(budget, cancellationToken);

    /// <summary>The allocator statistics.</summary>
    EngineMemoryStats GetMemoryStats();

    /// <summary>Starts a new peak window for <see cref="EngineMemoryStats.PeakWorkspaceBytes"/>.</summary>
    void ResetPeakStats();

    /// <summary>Returns cached, unused segments to the device.</summary>
    void EmptyCache();

    /// <summary>The chat-templated token ids of <paramref name="prompt"/>, right-truncated to <paramref name="maxLength"/>.</summary>
    int[] Tokenize(string prompt, int maxLength);

    /// <summary>Runs the text encoder: caption features <c>[L, capDim]</c> (workspace-tagged, owned by the caller).</summary>
    Tensor EncodePrompt(int[] tokenIds);

    /// <summary>Uploads latents <c>[16, h, w]</c>.</summary>
    Tensor CreateLatents(ReadOnlySpan<float> values, int height, int width);

    /// <summary>The flow-match sigmas for <paramref name="steps"/> steps (N+1 values ending in 0).</summary>
    float[] Sigmas(int steps);

    /// <summary>The model time of <paramref name="sigma"/> exactly as the reference computes it in float32.</summary>
    float ModelTime(float sigma);

    /// <summary>One DiT forward: the raw model output for <paramref name="latents"/> at <paramref name="modelTime"/> (owned by the caller).</summary>
    Tensor Predict(Tensor latents, float modelTime, Tensor caption);

    /// <summary>
    /// The positive and negative DiT forwards of one guided step (owned by the caller). Engines that stream the DiT run
    /// both block by block so each block is uploaded once per step; the default runs two <see cref="Predict"/> calls.
    /// </summary>
    (Tensor Positive, Tensor Negative) PredictGuided(Tensor latents, float modelTime, Tensor caption, Tensor negativeCaption) =>
        PredictTwice(this, latents, modelTime, caption, negativeCaption);

    /// <summary>The default guided step: two <see cref="Predict"/> calls on <paramref name="engine"/>; the first result is freed if the second fails.</summary>
    internal static (Tensor Positive, Tensor Negative) PredictTwice(IGenerationEngine engine, Tensor latents, float modelTime, Tensor caption, Tensor negativeCaption)
    {
        ArgumentNullException.ThrowIfNull(engine);
        var pos = engine.Predict(latents, modelTime, caption);
        try
        {
            return (pos, engine.Predict(latents, modelTime, negativeCaption));
        }
        catch
        {
            pos.Dispose();
            throw;
        }
    }

    /// <summary>The rung of the memory ladder this engine runs (null when it has no ladder, e.g. a test fake).</summary>
    Residency.ResidencyStrategy? Strategy => null;

    /// <summary>Host bytes of streamed weights, device bytes of their slots and bytes uploaded so far (zero when nothing streams).</summary>
    Residency.RingReport Streaming => default;

    /// <summary>CFG in place: <c>pos = pos + g·(pos − neg)</c>, then, when <paramref name="normalization"/> &gt; 0, caps ‖pos‖ at normalization × the original ‖pos‖.</summary>
    void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization);

    /// <summary>Euler update in place: <c>latents += dt · (−modelOutput)</c>.</summary>
    void EulerStep(Tensor latents, Tensor modelOutput, float dt);

    /// <summary>VAE-decodes latents to RGB8 (an all-black image of the right size in planning mode).</summary>
    RgbImage Decode(Tensor latents);

    /// <summary>A cheap preview: latents projected linearly to RGB at latent resolution (null in planning mode).</summary>
    RgbImage? Preview(Tensor latents);

    /// <summary>The LoRAs merged into the model's weights, in merge order (none by default).</summary>
    IReadOnlyList<Models.Lora.LoraSpec> Loras => [];

    /// <summary>Whether the engine implements the image-editing calls below (a VAE encoder is loaded).</summary>
    bool SupportsImageEditing => false;

    /// <summary>
    /// img2img/inpaint: VAE-encodes <paramref name="image"/> and samples the posterior with
    /// <paramref name="posteriorNoise"/>: <c>image_latents = (mean + std·eps − shift)·scale</c> <c>[16, h, w]</c> (owned by the caller).
    /// </summary>
    /// <exception cref="NotSupportedException">The engine has no VAE encoder.</exception>
    Tensor EncodeImage(RgbImage image, ReadOnlySpan<float> posteriorNoise) =>
        throw new NotSupportedException($"{GetType().Name} has no VAE encoder: img2img and inpaint are not available on it.");

    /// <summary>img2img/inpaint noising in place: <c>latents = σ·latents + (1 − σ)·imageLatents</c> (latents hold the noise on entry; diffusers' <c>scale_noise</c>).</summary>
    /// <exception cref="NotSupportedException">The engine does not support image editing.</exception>
    void AddNoise(Tensor imageLatents, Tensor latents, float sigma) =>
        throw new NotSupportedException($"{GetType().Name} does not support img2img.");

    /// <summary>Uploads a latent-resolution inpaint mask <c>[h, w]</c> (1 = repaint, 0 = keep).</summary>
    /// <exception cref="NotSupportedException">The engine does not support inpainting.</exception>
    Tensor CreateMask(ReadOnlySpan<float> mask, int height, int width) =>
        throw new NotSupportedException($"{GetType().Name} does not support inpainting.");

    /// <summary>Inpaint blend after a step, in place: <c>latents = (1 − m)·(σ·noise + (1 − σ)·imageLatents) + m·latents</c>.</summary>
    /// <exception cref="NotSupportedException">The engine does not support inpainting.</exception>
    void BlendMasked(Tensor latents, Tensor imageLatents, Tensor noise, Tensor mask, float sigma) =>
        throw new NotSupportedException($"{GetType().Name} does not support inpainting.");

    /// <summary>A planning twin of this engine on a simulated device of <paramref name="deviceBytes"/> with the same allocator settings and weights shapes (not loaded yet).</summary>
    IGenerationEngine CreatePlanner(long deviceBytes);
}
