using ZImage.Runtime.Compute;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests.Infrastructure;

/// <summary>
/// A decorator over the real <see cref="ZImageEngine"/> that downloads every intermediate of a generation as the
/// pipeline produces it: prompt embeddings, each transformer output, each guided prediction, the latents after each
/// Euler step, the final latents and the float VAE output (decoded a second time, outside the pipeline's image).
/// </summary>
public sealed class CapturingEngine(ZImageEngine inner) : DelegatingEngine(inner)
{
    private readonly ZImageEngine _engine = inner;

    public List<float[]> Embeddings { get; } = new();
    public List<float[]> Predictions { get; } = new();
    public List<float[]> Guided { get; } = new();
    public List<float[]> LatentsAfterStep { get; } = new();
    public float[]? FinalLatents { get; private set; }
    public float[]? Decoded { get; private set; }

    public override Tensor EncodePrompt(int[] tokenIds)
    {
        var t = base.EncodePrompt(tokenIds);
        Embeddings.Add(_engine.Ops.Download(t));
        return t;
    }

    public override Tensor Predict(Tensor latents, float modelTime, Tensor caption)
    {
        var t = base.Predict(latents, modelTime, caption);
        Predictions.Add(_engine.Ops.Download(t));
        return t;
    }

    // Two captured Predict calls (the interface's default), so guided steps record model_out_pos and model_out_neg.
    public override (Tensor Positive, Tensor Negative) PredictGuided(Tensor latents, float modelTime, Tensor caption, Tensor negativeCaption) =>
        IGenerationEngine.PredictTwice(this, latents, modelTime, caption, negativeCaption);

    public override void CombineGuidance(Tensor positive, Tensor negative, float guidance, float normalization)
    {
        base.CombineGuidance(positive, negative, guidance, normalization);
        Guided.Add(_engine.Ops.Download(positive));
    }

    public override void EulerStep(Tensor latents, Tensor modelOutput, float dt)
    {
        base.EulerStep(latents, modelOutput, dt);
        LatentsAfterStep.Add(_engine.Ops.Download(latents));
    }

    public override RgbImage Decode(Tensor latents)
    {
        FinalLatents = _engine.Ops.Download(latents);
        using (var decoded = _engine.DecodeToTensor(latents)) Decoded = _engine.Ops.Download(decoded);
        return base.Decode(latents);
    }
}
