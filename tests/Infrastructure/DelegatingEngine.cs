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
    public virtual void Dispose() => Inner.Dispose();
}
