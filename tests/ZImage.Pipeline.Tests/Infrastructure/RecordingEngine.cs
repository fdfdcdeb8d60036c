using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Pipeline.Tests.Infrastructure;

/// <summary>
/// Wraps a real <see cref="ZImageEngine"/> and downloads what each pipeline call produced, in call order, under the
/// reference's names: <c>prompt_embeds</c>/<c>negative_prompt_embeds</c>, <c>image_latents</c>,
/// <c>noised_latents</c>, per executed step <c>step.k.model_out</c> (or <c>_pos</c>/<c>_neg</c>/<c>guided_pred</c>
/// with CFG), <c>step.k.latents_denoised</c> (inpaint) and <c>step.k.latents_after</c>, <c>final_latents</c> and
/// <c>decoded</c>. Only for parity tests: every download synchronises the device.
/// </summary>
public sealed class RecordingEngine(ZImageEngine inner) : IGenerationEngine
{
    private int _step = -1;
    private bool _masked, _expectNegative;

    /// <summary>What was recorded.</summary>
    public Dictionary<string, float[]> Recorded { get; } = new(StringComparer.Ordinal);

    /// <summary>The wrapped engine.</summary>
    public ZImageEngine Inner => inner;

    public EngineDescription Description => inner.Description;
    public bool IsPlanning => inner.IsPlanning;
    public void Load(BudgetGuard? budget, CancellationToken cancellationToken) => inner.Load(budget, cancellationToken);
    public EngineMemoryStats GetMemoryStats() => inner.GetMemoryStats();
    public void ResetPeakStats() => inner.ResetPeakStats();
    public void EmptyCache() => inner.EmptyCache();
    public int[] Tokenize(string prompt, int maxLength) => inner.Tokenize(prompt, maxLength);

    public Tensor EncodePrompt(int[] tokenIds)
    {
        var t = inner.EncodePrompt(tokenIds);
        Recorded[Recorded.ContainsKey("prompt_embeds") ? "negative_prompt_embeds" : "prompt_embeds"] = inner.ReadValues(t);
        return t;
    }

    public Tensor CreateLatents(ReadOnlySpan<float> values, int height, int width) => inner.CreateLatents(values, height, width);
    public float[] Sigmas(int steps) => inner.Sigmas(steps);
    public float ModelTime(float sigma) => inner.ModelTime(sigma);

    public Tensor Predict(Tensor latents, float modelTime, Tensor caption)
    {
        var t = inner.Predict(latents, modelTime, caption);
        bool cfg = Recorded.ContainsKey("negative_prompt_embeds");
        if (!_expectNegative)
        {
            _step++;
            Recorded[$"step.{_step}.t_model"] = [modelTime];
            Recorded[cfg ? $"step.{_step}.model_out_pos" : $"step.{_step}.model_out"] = inner.ReadValues(t);
            _expectNegative = cfg;
        }
        else
        {
            Recorded[$"step.{_step}.model_out_neg"] = inner.ReadValues(t);
            // The reference runs CFG as one batch of two and stores its time vector.
            Recorded[$"step.{_step}.t_model"] = [modelTime, modelTime];
            _expectNegative = false;
        }
        return t;
    }

    public void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization)
    {
        inner.CombineGuidance(positive, negative, guidance, normalization);
        Recorded[$"step.{_step}.guided_pred"] = inner.ReadValues(positive);
    }

    public void EulerStep(Tensor latents, Tensor modelOutput, float dt)
    {
        inner.EulerStep(latents, modelOutput, dt);
        Recorded[_masked ? $"step.{_step}.latents_denoised" : $"step.{_step}.latents_after"] = inner.ReadValues(latents);
    }

    public RgbImage Decode(Tensor latents)
    {
        Recorded["final_latents"] = inner.ReadValues(latents);
        Recorded["decoded"] = inner.DecodeValues(latents);
        return inner.Decode(latents);
    }

    public RgbImage? Preview(Tensor latents) => inner.Preview(latents);
    public IGenerationEngine CreatePlanner(long deviceBytes) => inner.CreatePlanner(deviceBytes);

    public Tensor EncodeImage(RgbImage image, ReadOnlySpan<float> posteriorNoise)
    {
        var t = inner.EncodeImage(image, posteriorNoise);
        Recorded["image_latents"] = inner.ReadValues(t);
        return t;
    }

    public void AddNoise(Tensor imageLatents, Tensor latents, float sigma)
    {
        inner.AddNoise(imageLatents, latents, sigma);
        Recorded["noised_latents"] = inner.ReadValues(latents);
    }

    public Tensor CreateMask(ReadOnlySpan<float> mask, int height, int width)
    {
        _masked = true;
        var t = inner.CreateMask(mask, height, width);
        Recorded["mask_latent"] = inner.ReadValues(t);
        return t;
    }

    public bool SupportsImageEditing => inner.SupportsImageEditing;
    public IReadOnlyList<Runtime.Models.Lora.LoraSpec> Loras => inner.Loras;

    public void BlendMasked(Tensor latents, Tensor imageLatents, Tensor noise, Tensor mask, float sigma)
    {
        // The blend target σ·noise + (1 − σ)·image, from this run's own tensors and the σ the runner passed.
        float[] n = inner.ReadValues(noise), img = inner.ReadValues(imageLatents);
        Recorded[$"step.{_step}.init_latents_proper"] = n.Select((v, i) => sigma * v + (1f - sigma) * img[i]).ToArray();
        inner.BlendMasked(latents, imageLatents, noise, mask, sigma);
        Recorded[$"step.{_step}.latents_after"] = inner.ReadValues(latents);
    }

    public void Dispose() => inner.Dispose();
}
