using ZImage.Runtime.Compute;

namespace ZImage.Models.Tests.Vae;

/// <summary>
/// Presents the VAE mid-block attention projections the way legacy checkpoints store them, conv-shaped
/// <c>[C,C,1,1]</c>: a <c>[C,C]</c> request fails with <see cref="WeightShapeException"/> like the checkpoint provider,
/// and a <c>[C,C,1,1]</c> request returns the stored matrix viewed with that shape. Everything else passes through.
/// </summary>
internal sealed class ConvShapedAttentionWeights(IWeightProvider inner) : IWeightProvider
{
    public int ConvShapedRequests { get; private set; }

    public TensorDType MatrixDType => inner.MatrixDType;

    public Tensor Matrix(string name, params int[] shape)
    {
        if (!name.Contains(".attentions.", StringComparison.Ordinal)) return inner.Matrix(name, shape);
        if (shape is [int cout, int cin])
            throw new WeightShapeException(name, shape, new[] { cout, cin, 1, 1 });
        if (shape is [int co, int ci, 1, 1])
        {
            ConvShapedRequests++;
            return inner.Matrix(name, co, ci).Reshape(shape);
        }
        return inner.Matrix(name, shape);
    }

    public Tensor Vector(string name, params int[] shape) => inner.Vector(name, shape);

    public float[] GatherRows(string name, ReadOnlySpan<int> rows, int dim) => inner.GatherRows(name, rows, dim);

    public void Dispose()
    {
        // The inner provider is owned by the test host.
    }
}
