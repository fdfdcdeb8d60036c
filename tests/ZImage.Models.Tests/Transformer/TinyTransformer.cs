using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Models.Transformer;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Transformer;

/// <summary>
/// The tiny checkpoint's DiT loaded through <see cref="CheckpointWeights"/> on a real <see cref="CachingAllocator"/>
/// over the shared CPU accelerator, with helpers to run a reference case's inputs.
/// </summary>
internal sealed class TinyTransformer : IDisposable
{
    private readonly ComputeFixture _fx;
    private readonly SafetensorsCheckpoint _reader;

    public TinyTransformer(ComputeFixture fx, TensorDType matrixDType, AllocatorSettings? settings = null, Action<CachingAllocator>? beforeLoad = null,
        string? transformerDir = null, TensorDType? quantized = null, Func<ISafetensorsReader, ISafetensorsReader>? wrapReader = null)
    {
        _fx = fx;
        Config = ZImageConfig.Load(FixturePaths.TinyCheckpoint).Transformer;
        Allocator = fx.CreateAllocator(settings);
        beforeLoad?.Invoke(Allocator);
        _reader = SafetensorsCheckpoint.Open(transformerDir ?? Path.Combine(FixturePaths.TinyCheckpoint, ZImageConfig.TransformerFolder));
        Weights = new CheckpointWeights(wrapReader?.Invoke(_reader) ?? _reader, Allocator, new CheckpointWeightsOptions { MatrixDType = matrixDType, QuantizedDType = quantized });
        Context = new ComputeContext(Allocator, fx.Ops);
        Model = new ZImageTransformer(Config, Weights, Context);
    }

    public TransformerConfig Config { get; }
    public CachingAllocator Allocator { get; }
    public CheckpointWeights Weights { get; }
    public ComputeContext Context { get; }
    public ZImageTransformer Model { get; }

    /// <summary>Runs one sample: x <c>[16,1,H,W]</c> (frame axis dropped), t, cap_feats <c>[L,dim]</c>.</summary>
    public float[] Forward(ReferenceTensor<float> x, float t, ReferenceTensor<float> capFeats)
    {
        using var latents = Context.Empty(AllocationTags.Latents, x.Shape[0], x.Shape[2], x.Shape[3]);
        using var cap = Context.Empty(AllocationTags.TextEncoder, capFeats.Shape);
        _fx.Ops.Upload(x.Data, latents);
        _fx.Ops.Upload(capFeats.Data, cap);
        using var output = Model.Forward(latents, t, cap);
        Assert.Equal(AllocationTags.Transformer, output.Allocation.Tag);
        return _fx.Ops.Download(output);
    }

    public void Dispose()
    {
        Weights.Dispose();
        Allocator.Dispose();
        _reader.Dispose();
    }
}
