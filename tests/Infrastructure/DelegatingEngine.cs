using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Pipeline;

namespace ZImage.Tests.Infrastructure;

/// <summary>An <see cref="IGenerationEngine"/> that forwards every call to <paramref name="inner"/>; test decorators override what they observe.</summary>
public abstract class DelegatingEngine(IGenerationEngine inner) : IGenerationEngine
{
    /// <summary>The decorated engine.</summary>
    public IGenerationEngine Inner { get; } = inner;

    public virtual EngineDescription Description => Inner.Description;
    public virtual bool IsPlanning => Inner.IsPlanning;
    public virtual void Load(BudgetGuard? budget, CancellationToken cancellationToken) => Inner.Load(budget, cancellationToken);
    public virtual EngineMemoryStats GetMemoryStats() => Inner.GetMemoryStats();
    public virtual void ResetPeakStats() => Inner.ResetPeakStats();
    public virtual void EmptyCache() => Inner.EmptyCache();
    public virtual int[] Tokenize(string prompt, int maxLength) => Inner.Tokenize(prompt, maxLength);
    public virtual Tensor EncodePrompt(int[] tokenIds) => Inner.EncodePrompt(tokenIds);
    public virtual Tensor CreateLatents(ReadOnlySpan<float> values, int height, int width) => Inner.CreateLatents(values, height, width);
    public virtual float[] Sigmas(int steps) => Inner.Sigmas(steps);
    public virtual float ModelTime(float sigma) => Inner.ModelTime(sigma);
    public virtual Tensor Predict(Tensor latents, float modelTime, Tensor caption) => Inner.Predict(latents, modelTime, caption);
    public virtual void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization) => Inner.CombineGuidance(positive, negative, guidance, normalization);
    public virtual void EulerStep(Tensor latents, Tensor modelOutput, float dt) => Inner.EulerStep(latents, modelOutput, dt);
    public virtual RgbImage Decode(Tensor latents) => Inner.Decode(latents);
    public virtual RgbImage? Preview(Tensor latents) => Inner.Preview(latents);
    public virtual IGenerationEngine CreatePlanner(long deviceBytes) => Inner.CreatePlanner(deviceBytes);
    // The interface's default members too: without them a decorator would hide the engine's own guided step,
    // its ladder rung and its image editing (the defaults say "not supported").
    public virtual (Tensor Positive, Tensor Negative) PredictGuided(Tensor latents, float modelTime, Tensor caption, Tensor negativeCaption) =>
        Inner.PredictGuided(latents, modelTime, caption, negativeCaption);
    public virtual ZImage.Runtime.Residency.ResidencyStrategy? Strategy => Inner.Strategy;
    public virtual ZImage.Runtime.Residency.RingReport Streaming => Inner.Streaming;
    public virtual bool SupportsImageEditing => Inner.SupportsImageEditing;
    public virtual Tensor EncodeImage(RgbImage image, ReadOnlySpan<float> posteriorNoise) => Inner.EncodeImage(image, posteriorNoise);
    public virtual void AddNoise(Tensor imageLatents, Tensor latents, float sigma) => Inner.AddNoise(imageLatents, latents, sigma);
    public virtual Tensor CreateMask(ReadOnlySpan<float> mask, int height, int width) => Inner.CreateMask(mask, height, width);
    public virtual void BlendMasked(Tensor latents, Tensor imageLatents, Tensor noise, Tensor mask, float sigma) => Inner.BlendMasked(latents, imageLatents, noise, mask, sigma);
    public virtual void Dispose() => Inner.Dispose();
}
