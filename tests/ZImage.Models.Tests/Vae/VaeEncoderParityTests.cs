using Xunit.Abstractions;
using ZImage.Models.Tests.Infrastructure;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Models.Vae;
using ZImage.Tests.Infrastructure;

namespace ZImage.Models.Tests.Vae;

/// <summary>
/// Every <c>vae_encode</c> edit reference case: the tiny VAE encoder (portable kernels on the ILGPU CPU accelerator,
/// F32 device weights) reproduces the moments, the clamped logvar, the std, the posterior sample with the stored eps
/// and the normalised latents within the manifest tolerances, and frees every activation.
/// </summary>
[Collection(ComputeCollection.Name)]
[Trait("Category", "Parity")]
public sealed class VaeEncoderParityTests(ComputeFixture fixture, ITestOutputHelper output)
{
    public static TheoryData<string> Cases => EditReferenceManifest.Names("vae_encode");

    [Theory]
    [MemberData(nameof(Cases))]
    public void PosteriorAndLatentsMatchReference(string caseName)
    {
        var c = EditReferenceManifest.Get(caseName);
        using var host = TinyModelHost.Real(fixture, f => f.Vae, TensorDType.F32);
        var encoder = new VaeEncoder(host.Config.Vae, host.Weights, host.Compute);
        var vae = host.Config.Vae;
        using var image = host.Upload(c.LoadFloat("image"));
        using var eps = host.Upload(c.LoadFloat("eps"));
        int liveBefore = host.Recorder.LiveCount;

        void Check(string name, float[] actual)
        {
            var expected = c.LoadFloat(name);
            double tol = c.ToleranceFor(name).RecommendedMaxAbs;
            double err = TensorAssert.Close(expected, actual, tol);
            output.WriteLine($"{caseName} {name}: max|Δ| = {err:E3} (tolerance {tol:E2})");
        }

        using (var moments = encoder.EncodeMoments(image))
        {
            Assert.Equal(c.LoadFloat("moments").Shape[1..], moments.Shape);
            float[] m = host.Download(moments);
            Check("moments", m);
            int half = m.Length / 2;
            Check("mean", m[..half]);
            Check("logvar", m[half..].Select(v => Math.Clamp(v, -30f, 20f)).ToArray());

            using var std = host.Compute.Empty(AllocationTags.Vae, vae.LatentChannels, moments.Shape[1], moments.Shape[2]);
            using var sample = host.Compute.Empty(AllocationTags.Vae, std.Shape);
            host.Compute.Ops.PosteriorSample(moments, eps, 1f, 0f, sample, std);
            Check("std", host.Download(std));
            Check("latent_sample", host.Download(sample));
        }

        using (var latents = encoder.Encode(image, eps))
        {
            Assert.Equal(AllocationTags.Latents, latents.Allocation.Tag);
            Check("latents_scaled", host.Download(latents));
        }
        Assert.Equal(liveBefore, host.Recorder.LiveCount);
    }

    [Fact]
    public void ModeIsTheScaledMean()
    {
        var c = EditReferenceManifest.OfKind("vae_encode").MinBy(r => r.LoadFloat("image").Data.Length)!;
        using var host = TinyModelHost.Real(fixture, f => f.Vae, TensorDType.F32);
        var encoder = new VaeEncoder(host.Config.Vae, host.Weights, host.Compute);
        using var image = host.Upload(c.LoadFloat("image"));
        using var latents = encoder.Encode(image, eps: null);
        var mean = c.LoadFloat("mean").Data;
        float scale = (float)host.Config.Vae.ScalingFactor, shift = (float)host.Config.Vae.EffectiveShiftFactor;
        var expected = mean.Select(v => (v - shift) * scale).ToArray();
        TensorAssert.Close(expected, host.Download(latents), c.ToleranceFor("latents_scaled").RecommendedMaxAbs, "mode");
    }

    [Fact]
    public void ImageWhoseSizeIsNotAMultipleOfEightIsRejected()
    {
        using var host = TinyModelHost.Planning(TensorDType.F32);
        var encoder = new VaeEncoder(host.Config.Vae, host.Weights, host.Compute);
        using var image = host.Compute.Empty(AllocationTags.Latents, 3, 60, 64);
        var e = Assert.Throws<TensorShapeException>(() => encoder.EncodeMoments(image));
        Assert.Contains("multiples of 8", e.Message);
        Assert.Contains("[3,60,64]", e.Message);
    }
}
