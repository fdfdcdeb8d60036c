using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>
/// The state of one model run: a <see cref="CachingAllocator"/> (over the accelerator-backed backend for a real run,
/// over a <see cref="SimulatedDeviceBackend"/> for a planning run) seen through an <see cref="AllocationRecorder"/>,
/// the ops, and a weight provider over the tiny checkpoint (<see cref="CheckpointWeights"/> or
/// <see cref="PlanningWeights"/>) in the requested matrix dtype.
/// </summary>
internal sealed class TinyModelHost : IDisposable
{
    private readonly CheckpointFolder? _folder;

    private TinyModelHost(CachingAllocator allocator, IComputeOps ops, ZImageConfig config, CheckpointFolder? folder,
        Func<IDeviceAllocator, IWeightProvider> weights)
    {
        Allocator = allocator;
        Recorder = new AllocationRecorder(allocator);
        Compute = new ComputeContext(Recorder, ops);
        Config = config;
        _folder = folder;
        Weights = weights(Recorder);
    }

    public CachingAllocator Allocator { get; }
    public AllocationRecorder Recorder { get; }
    public ComputeContext Compute { get; }
    public ZImageConfig Config { get; }
    public IWeightProvider Weights { get; }

    /// <summary>A real run: kernels on the fixture's CPU accelerator, weights uploaded from one checkpoint component.</summary>
    public static TinyModelHost Real(ComputeFixture fixture, Func<CheckpointFolder, ISafetensorsReader> component, TensorDType matrixDType)
    {
        var folder = CheckpointFolder.Open(FixturePaths.TinyCheckpoint);
        try
        {
            return new TinyModelHost(fixture.CreateAllocator(), fixture.Ops, folder.Config, folder,
                a => new CheckpointWeights(component(folder), a, new CheckpointWeightsOptions { MatrixDType = matrixDType }));
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    /// <summary>A planning run: no-op ops and data-less weights over a simulated device.</summary>
    public static TinyModelHost Planning(TensorDType matrixDType) =>
        new(new CachingAllocator(new SimulatedDeviceBackend(4 * ByteSize.GiB), ownsBackend: true), new PlanningComputeOps(),
            ZImageConfig.Load(FixturePaths.TinyCheckpoint), null, a => new PlanningWeights(a, matrixDType));

    /// <summary>Downloads an F32 tensor.</summary>
    public float[] Download(Tensor t) => Compute.Ops.Download(t);

    /// <summary>Uploads a reference tensor as an F32 device tensor of its own shape (tag <see cref="AllocationTags.Latents"/>).</summary>
    public Tensor Upload(ReferenceTensor<float> reference)
    {
        var t = Compute.Empty(AllocationTags.Latents, reference.Shape);
        Compute.Ops.Upload(reference.Data, t);
        return t;
    }

    public void Dispose()
    {
        Weights.Dispose();
        _folder?.Dispose();
        Allocator.Dispose();
    }
}
