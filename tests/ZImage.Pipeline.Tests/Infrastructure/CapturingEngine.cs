using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Pipeline.Tests.Infrastructure;

/// <summary>
/// A decorator over the real <see cref="ZImageEngine"/> that downloads every intermediate of a generation as the
/// pipeline produces it: prompt embeddings, each transformer output, each guided prediction, the latents after each
/// Euler step, the final latents and the float VAE output (decoded a second time, outside the pipeline's image).
/// </summary>
public sealed class CapturingEngine(ZImageEngine inner) : IGenerationEngine
{
    public List<float[]> Embeddings { get; } = new();
    public List<float[]> Predictions { get; } = new();
    public List<float[]> Guided { get; } = new();
    public List<float[]> LatentsAfterStep { get; } = new();
    public float[]? FinalLatents { get; private set; }
    public float[]? Decoded { get; private set; }

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
        Embeddings.Add(inner.Ops.Download(t));
        return t;
    }

    public Tensor CreateLatents(ReadOnlySpan<float> values, int height, int width) => inner.CreateLatents(values, height, width);
    public float[] Sigmas(int steps) => inner.Sigmas(steps);
    public float ModelTime(float sigma) => inner.ModelTime(sigma);

    public Tensor Predict(Tensor latents, float modelTime, Tensor caption)
    {
        var t = inner.Predict(latents, modelTime, caption);
        Predictions.Add(inner.Ops.Download(t));
        return t;
    }

    public void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization)
    {
        inner.CombineGuidance(positive, negative, guidance, normalization);
        Guided.Add(inner.Ops.Download(positive));
    }

    public void EulerStep(Tensor latents, Tensor modelOutput, float dt)
    {
        inner.EulerStep(latents, modelOutput, dt);
        LatentsAfterStep.Add(inner.Ops.Download(latents));
    }

    public RgbImage Decode(Tensor latents)
    {
        FinalLatents = inner.Ops.Download(latents);
        using (var decoded = inner.DecodeToTensor(latents)) Decoded = inner.Ops.Download(decoded);
        return inner.Decode(latents);
    }

    public RgbImage? Preview(Tensor latents) => inner.Preview(latents);
    public IGenerationEngine CreatePlanner(long deviceBytes) => inner.CreatePlanner(deviceBytes);
    public void Dispose() => inner.Dispose();
}
