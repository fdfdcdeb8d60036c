using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Models.Transformer;
using ZImage.Runtime.Pipeline.Engine;
using ZImage.Runtime.Residency;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Transformer;

/// <summary>
/// Full offload's double buffering, observed on the CPU accelerator through the ring's event trace: block i+1 is
/// staged and its copy issued on the copy stream before block i is handed out (so its compute runs under the copy),
/// the slot is reused only after waiting for the compute that read it, both CFG branches share one upload per block,
/// and the planning twin runs the identical sequence.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class RingOverlapTests(ComputeFixture fx, Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void TheNextBlocksUploadIsIssuedBeforeThisBlockComputesAndBothCfgBranchesShareIt()
    {
        var c = ReferenceCases.Get("tr_64x64_L7_t0");
        var x = c.LoadFloat("x");
        var cap = c.LoadFloat("cap_feats");
        float t = c.LoadFloat("t").Data[0];
        var config = ZImageConfig.Load(FixturePaths.TinyCheckpoint).Transformer;
        var dims = ZImageEngine.TransformerDimsOf(config);
        int blocks = 2 * dims.RefinerLayers + dims.Layers;

        var real = new List<RingEvent>();
        float[] streamed;
        RingReport report;
        using (var reader = SafetensorsCheckpoint.Open(Path.Combine(FixturePaths.TinyCheckpoint, ZImageConfig.TransformerFolder)))
        using (var allocator = fx.CreateAllocator())
        using (var weights = new CheckpointWeights(reader, allocator, new CheckpointWeightsOptions { MatrixDType = TensorDType.F32 }))
        {
            var ctx = new ComputeContext(allocator, fx.Ops);
            using var model = new ZImageTransformer(dims, weights, ctx, LayerPlacement.Streamed);
            model.RingObserver = real.Add;
            streamed = Run(ctx, model, x, cap, t, fx.Ops.Download);
            report = model.Streaming;
            output.WriteLine($"staging {report.StagingBytes} B, page-locked: {model.PinnedStaging}; {real.Count} ring events");
        }

        var planned = new List<RingEvent>();
        using (var sim = new CachingAllocator(new SimulatedDeviceBackend(SimulatedDeviceBackend.Unlimited), ownsBackend: true))
        using (var weights = new PlanningWeights(sim, TensorDType.F32))
        {
            var ctx = new ComputeContext(sim, new PlanningComputeOps());
            using var model = new ZImageTransformer(dims, weights, ctx, LayerPlacement.Streamed);
            model.RingObserver = planned.Add;
            Run(ctx, model, x, cap, t, _ => []);
            Assert.Equal(report.StagingBytes, model.Streaming.StagingBytes);
        }
        Assert.Equal(real, planned);

        // One upload per block for both branches, the whole DiT per forward.
        var issued = real.Where(e => e.Kind == RingEventKind.UploadIssued).ToList();
        Assert.Equal(Enumerable.Range(0, blocks), issued.Select(e => e.Layer));
        Assert.Equal(report.HostBytes, issued.Sum(e => e.Bytes));
        Assert.Equal(report.HostBytes, report.UploadedBytes);
        Assert.Equal(report.SlotBytes, report.StagingBytes); // one staging buffer per slot
        int At(RingEventKind kind, int layer) => real.FindIndex(e => e.Kind == kind && e.Layer == layer);
        for (int i = 0; i < blocks; i++)
        {
            int returned = At(RingEventKind.Returned, i);
            Assert.True(At(RingEventKind.UploadWaited, i) < returned, $"block {i} handed out before its copy was waited for");
            if (i + 1 < blocks)
                Assert.True(At(RingEventKind.UploadIssued, i + 1) < returned, $"block {i + 1}'s copy is issued after block {i} computes");
            if (i >= 1 && i + 1 < blocks)
            {
                // Block i+1 reuses block i-1's slot: staged on the host while i-1 may still compute, copied only after it has.
                Assert.True(At(RingEventKind.Returned, i - 1) < At(RingEventKind.Staged, i + 1));
                Assert.True(At(RingEventKind.Staged, i + 1) < At(RingEventKind.ComputeWaited, i + 1));
                Assert.True(At(RingEventKind.ComputeWaited, i + 1) < At(RingEventKind.UploadIssued, i + 1));
            }
        }

        // Streaming through staging buffers and the copy stream gives the resident forward's bytes.
        using var resident = new TinyTransformer(fx, TensorDType.F32);
        Assert.Equal(resident.Forward(x, t, cap), streamed);
    }

    private static float[] Run(ComputeContext ctx, ZImageTransformer model, ReferenceTensor<float> x, ReferenceTensor<float> cap, float t, Func<Tensor, float[]> download)
    {
        using var latents = ctx.Empty(AllocationTags.Latents, x.Shape[0], x.Shape[2], x.Shape[3]);
        using var caption = ctx.Empty(AllocationTags.TextEncoder, cap.Shape);
        ctx.Ops.Upload(x.Data, latents);
        ctx.Ops.Upload(cap.Data, caption);
        var outs = model.Forward(latents, t, [caption, caption]);
        try
        {
            var first = download(outs[0]);
            if (first.Length > 0) Assert.Equal(first, download(outs[1]));
            return first;
        }
        finally
        {
            foreach (var o in outs) o.Dispose();
        }
    }
}
