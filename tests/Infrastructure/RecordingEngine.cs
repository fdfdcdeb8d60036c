using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Pipeline;

namespace ZImage.Tests.Infrastructure;

/// <summary>
/// An <see cref="IGenerationEngine"/> decorator that records, on the device thread, the prompt of every generation in
/// the order the engine starts it (<see cref="Tokenize"/> is the first call a generation makes; a CFG request then
/// tokenizes its negative prompt too, which is recorded after it), so a test sees the
/// order the queue really ran requests in rather than the order their tasks were awaited. Planning twins are not
/// recorded (<see cref="CreatePlanner"/> returns the inner engine's planner).
/// </summary>
public sealed class RecordingEngine(IGenerationEngine inner) : IGenerationEngine
{
    private readonly List<string> _started = new();

    /// <summary>Prompts in the order their generations started on the device.</summary>
    public IReadOnlyList<string> StartOrder { get { lock (_started) return [.. _started]; } }

    public IGenerationEngine Inner => inner;
    public EngineDescription Description => inner.Description;
    public bool IsPlanning => inner.IsPlanning;
    public void Load(BudgetGuard? budget, CancellationToken cancellationToken) => inner.Load(budget, cancellationToken);
    public EngineMemoryStats GetMemoryStats() => inner.GetMemoryStats();
    public void ResetPeakStats() => inner.ResetPeakStats();
    public void EmptyCache() => inner.EmptyCache();

    public int[] Tokenize(string prompt, int maxLength)
    {
        lock (_started) _started.Add(prompt);
        return inner.Tokenize(prompt, maxLength);
    }

    public Tensor EncodePrompt(int[] tokenIds) => inner.EncodePrompt(tokenIds);
    public Tensor CreateLatents(ReadOnlySpan<float> values, int height, int width) => inner.CreateLatents(values, height, width);
    public float[] Sigmas(int steps) => inner.Sigmas(steps);
    public float ModelTime(float sigma) => inner.ModelTime(sigma);
    public Tensor Predict(Tensor latents, float modelTime, Tensor caption) => inner.Predict(latents, modelTime, caption);
    public void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization) => inner.CombineGuidance(positive, negative, guidance, normalization);
    public void EulerStep(Tensor latents, Tensor modelOutput, float dt) => inner.EulerStep(latents, modelOutput, dt);
    public RgbImage Decode(Tensor latents) => inner.Decode(latents);
    public RgbImage? Preview(Tensor latents) => inner.Preview(latents);
    public IGenerationEngine CreatePlanner(long deviceBytes) => inner.CreatePlanner(deviceBytes);
    public void Dispose() => inner.Dispose();
}
