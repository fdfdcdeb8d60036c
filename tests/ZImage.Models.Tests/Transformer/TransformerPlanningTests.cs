using Xunit.Abstractions;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Transformer;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Transformer;

/// <summary>
/// Planning mode (no-op ops + planning weights over a simulated device) must make exactly the allocations of a real
/// forward, and must size the real Turbo model without weights or kernels.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class TransformerPlanningTests(ComputeFixture fx, ITestOutputHelper output)
{
    public static TheoryData<string> ForwardCases() => ReferenceCases.Names("transformer_forward");

    [Theory]
    [MemberData(nameof(ForwardCases))]
    public void APlanningForwardRecordsTheSameTraceAsARealForward(string caseName)
    {
        var c = ReferenceCases.Get(caseName);
        var x = c.LoadFloat("x");
        var cap = c.LoadFloat("cap_feats");
        float t = c.LoadFloat("t").Data[0];
        var settings = AllocatorSettings.Parse("max_split_size_mb:20,roundup_power2_divisions:4");

        AllocationTraceRecorder? realRecorder = null;
        AllocationTrace realTrace;
        AllocatorStatistics realStats;
        using (var dit = new TinyTransformer(fx, TensorDType.BF16, settings, a => realRecorder = new AllocationTraceRecorder(a)))
        {
            dit.Forward(x, t, cap);
            dit.Weights.Dispose();
            realTrace = realRecorder!.Trace;
            realStats = dit.Allocator.GetStatistics();
            realRecorder.Dispose();
        }

        AllocationTrace planTrace;
        AllocatorStatistics planStats;
        using (var sim = new CachingAllocator(new SimulatedDeviceBackend(SimulatedDeviceBackend.Unlimited), settings, ownsBackend: true))
        using (var recorder = new AllocationTraceRecorder(sim))
        {
            var config = ZImageConfig.Load(FixturePaths.TinyCheckpoint).Transformer;
            var weights = new PlanningWeights(sim, TensorDType.BF16);
            var ctx = new ComputeContext(sim, new PlanningComputeOps());
            var model = new ZImageTransformer(config, weights, ctx);
            using (var latents = ctx.Empty(AllocationTags.Latents, x.Shape[0], x.Shape[2], x.Shape[3]))
            using (var capFeats = ctx.Empty(AllocationTags.TextEncoder, cap.Shape))
            using (var result = model.Forward(latents, t, capFeats))
                Assert.Equal([x.Shape[0], x.Shape[2], x.Shape[3]], result.Shape);
            weights.Dispose();
            planTrace = recorder.Trace;
            planStats = sim.GetStatistics();
        }

        int diff = realTrace.FirstDifference(planTrace);
        Assert.True(diff < 0, diff < 0 ? "" :
            $"{caseName}: traces differ at event {diff}: real {Describe(realTrace, diff)} vs planning {Describe(planTrace, diff)} ({realTrace.Events.Count} / {planTrace.Events.Count} events).");
        Assert.True(realTrace.EventsEqual(planTrace));
        Assert.Contains(realTrace.Events, e => e.Tag == AllocationTags.Transformer);
        Assert.Equal(realStats.AllocatedBytes.Peak, planStats.AllocatedBytes.Peak);
        Assert.Equal(realStats.ReservedBytes.Peak, planStats.ReservedBytes.Peak);
        Assert.Equal(realStats.Tags[AllocationTags.Transformer].AllocatedBytes.Peak, planStats.Tags[AllocationTags.Transformer].AllocatedBytes.Peak);
        Assert.Equal(0, planStats.AllocatedBytes.Current);
        output.WriteLine($"{caseName}: {realTrace.Events.Count} identical events, peak allocated {ByteSize.Format(planStats.AllocatedBytes.Peak)}");
    }

    private static string Describe(AllocationTrace trace, int index) =>
        index < trace.Events.Count ? trace.Events[index].ToString() : "<end of trace>";

    [Fact]
    public void PlanningTurboAt1024SizesWeightsAndWorkspaceWithoutRunningAnything()
    {
        var config = ZImageConfig.Turbo.Transformer;
        using var sim = new CachingAllocator(new SimulatedDeviceBackend(SimulatedDeviceBackend.Unlimited), ownsBackend: true);
        using var weights = new PlanningWeights(sim, TensorDType.BF16);
        var ctx = new ComputeContext(sim, new PlanningComputeOps());
        var model = new ZImageTransformer(config, weights, ctx);

        // §7.1: 6,154,908,736 parameters, matrices in bf16 (vectors stay fp32: about 1 M of them).
        Assert.Equal(6_154_908_736L, weights.ParameterCount);
        Assert.InRange(weights.TotalBytes, 6_154_908_736L * 2, 6_154_908_736L * 2 + 8 * ByteSize.MiB);

        const int latent = 1024 / 8, captionTokens = 120;
        int s = 1024 / 16 * (1024 / 16) + TransformerDims.Ceil32(captionTokens);
        int d = config.Dim, f = config.FfnHidden;
        sim.ResetPeakStats();
        using (var latents = ctx.Empty(AllocationTags.Latents, config.InChannels, latent, latent))
        using (var cap = ctx.Empty(AllocationTags.TextEncoder, captionTokens, config.CapFeatDim))
        using (var result = model.Forward(latents, 0.5f, cap))
            Assert.Equal([config.InChannels, latent, latent], result.Shape);

        var stats = sim.GetStatistics();
        long peak = stats.Tags[AllocationTags.Transformer].AllocatedBytes.Peak;
        // Activations are fp32 (twice §7.3's bf16 figures). The FFN phase needs the hidden state plus gate and up
        // [S,F] at once; §7.3's FFN transient (20·S·D bytes in bf16) doubled bounds it from above, and the peak must
        // stay far below materialised all-head attention scores (30·S²·4 bytes).
        long lower = 4L * s * (d + 2L * f);
        long upper = 2L * 20 * s * d;
        output.WriteLine($"Turbo 1024x1024, L={captionTokens} (S={s}): transformer workspace peak {ByteSize.Format(peak)} " +
            $"(bounds {ByteSize.Format(lower)} .. {ByteSize.Format(upper)}), weights {ByteSize.Format(weights.TotalBytes)}, reserved peak {ByteSize.Format(stats.ReservedBytes.Peak)}");
        Assert.InRange(peak, lower, upper);
        Assert.True(peak < 30L * s * s * 4 / 2, "the planned peak implies materialised attention scores");
        Assert.Equal(0, stats.Tags[AllocationTags.Transformer].AllocatedBytes.Current);
        Assert.Equal(stats.Tags[AllocationTags.Weights].AllocatedBytes.Current, sim.AllocatedBytes);
    }
}
