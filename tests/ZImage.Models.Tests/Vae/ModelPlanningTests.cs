using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.TextEncoder;
using ZImage.Runtime.Models.Vae;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Vae;

/// <summary>
/// Planning mode (<see cref="PlanningComputeOps"/> + <see cref="PlanningWeights"/> on a
/// <see cref="SimulatedDeviceBackend"/>) makes exactly the allocations of a real run of the text encoder and the VAE
/// decoder on the tiny checkpoint: the same (op, bytes, tag) sequence, weights included, and hence the same peak
/// allocated and reserved bytes of the caching allocator.
/// </summary>
[Collection(ComputeCollection.Name)]
public sealed class ModelPlanningTests(ComputeFixture fixture)
{
    public static TheoryData<string> TextEncoderCases => ReferenceCases.Names("text_encoder");
    public static TheoryData<string> VaeCases => ReferenceCases.Names("vae_decode");

    [Theory]
    [MemberData(nameof(TextEncoderCases))]
    public void TextEncoderPlanningMatchesRealAllocations(string caseName)
    {
        int[] ids = ReferenceCases.Get(caseName).LoadInt32("input_ids").Data;

        static void Run(TinyModelHost host, int[] ids)
        {
            var encoder = new Qwen3TextEncoder(host.Config.TextEncoder, host.Weights, host.Compute);
            using var hidden = encoder.Encode(ids);
        }

        AssertSameAllocations(TensorDType.F32, f => f.TextEncoder, host => Run(host, ids), AllocationTags.TextEncoder);
    }

    [Theory]
    [MemberData(nameof(VaeCases))]
    public void VaeDecoderPlanningMatchesRealAllocations(string caseName)
    {
        var latents = ReferenceCases.Get(caseName).LoadFloat("latents");

        static void Run(TinyModelHost host, ReferenceTensor<float> latents)
        {
            var decoder = new VaeDecoder(host.Config.Vae, host.Weights, host.Compute);
            using var z = host.Upload(latents);
            using var image = decoder.Decode(z);
        }

        // BF16 here (the F32 case is the parity run): the matrix dtype must size the weights identically too.
        AssertSameAllocations(TensorDType.BF16, f => f.Vae, host => Run(host, latents), AllocationTags.Vae);
    }

    public static TheoryData<string> VaeEncodeCases => EditReferenceManifest.Names("vae_encode");

    [Theory]
    [MemberData(nameof(VaeEncodeCases))]
    public void VaeEncoderPlanningMatchesRealAllocations(string caseName)
    {
        var c = EditReferenceManifest.Get(caseName);
        var pixels = c.LoadFloat("image");
        var eps = c.LoadFloat("eps");

        static void Run(TinyModelHost host, ReferenceTensor<float> pixels, ReferenceTensor<float> eps)
        {
            var encoder = new VaeEncoder(host.Config.Vae, host.Weights, host.Compute);
            using var image = host.Upload(pixels);
            using var e = host.Upload(eps);
            using var latents = encoder.Encode(image, e);
        }

        AssertSameAllocations(TensorDType.BF16, f => f.Vae, host => Run(host, pixels, eps), AllocationTags.Vae);
    }

    [Fact]
    public void TiledVaeDecodePlanningMatchesRealAllocations()
    {
        // One case (each is a six-tile decode); the parity test checks the planner's peak on every case.
        var c = EditReferenceManifest.OfKind("vae_decode_tiled")[0];
        var latents = c.LoadFloat("latents");
        var tiles = new VaeTileSettings(c.Param<int>("tile_sample_min_size"), c.Param<int>("tile_latent_min_size"), 8, c.Param<double>("tile_overlap_factor"));

        void Run(TinyModelHost host)
        {
            var decoder = new VaeDecoder(host.Config.Vae, host.Weights, host.Compute);
            using var z = host.Upload(latents);
            using var image = decoder.Decode(z, tiles);
        }

        AssertSameAllocations(TensorDType.BF16, f => f.Vae, Run, AllocationTags.Vae);
    }

    private void AssertSameAllocations(TensorDType dtype, Func<Runtime.Models.Configuration.CheckpointFolder, Runtime.Models.Safetensors.ISafetensorsReader> component,
        Action<TinyModelHost> run, string activationTag)
    {
        IReadOnlyList<AllocationEvent> real, planned;
        AllocatorStatistics realStats, plannedStats;
        using (var host = TinyModelHost.Real(fixture, component, dtype))
        {
            run(host);
            real = host.Recorder.Events;
            realStats = host.Allocator.GetStatistics();
        }
        using (var host = TinyModelHost.Planning(dtype))
        {
            run(host);
            planned = host.Recorder.Events;
            plannedStats = host.Allocator.GetStatistics();
        }

        // A forward that allocated nothing would pass trivially.
        Assert.Contains(real, e => e.Op == "alloc" && e.Tag == AllocationTags.Weights);
        Assert.True(real.Count(e => e.Op == "alloc" && e.Tag == activationTag) >= 10, "The forward made too few activation allocations.");
        for (int i = 0; i < Math.Min(real.Count, planned.Count); i++)
            Assert.True(real[i] == planned[i], $"Event {i}: real {real[i]} but planned {planned[i]}.");
        Assert.Equal(real.Count, planned.Count);
        Assert.Equal(realStats.AllocatedBytes.Peak, plannedStats.AllocatedBytes.Peak);
        Assert.Equal(realStats.ReservedBytes.Peak, plannedStats.ReservedBytes.Peak);
        Assert.Equal(realStats.Tags[activationTag].AllocatedBytes.Peak, plannedStats.Tags[activationTag].AllocatedBytes.Peak);
    }
}
