using ZImage.Pipeline.Tests.Infrastructure;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Memory;
using ZImage.Runtime.Pipeline;
using ZImage.Tests.Infrastructure;

namespace ZImage.Pipeline.Tests;

/// <summary>One started real-engine pipeline with image editing (the VAE encoder loaded), shared by <see cref="EditFaultTests"/>.</summary>
public sealed class TinyEditEngineFixture : IAsyncLifetime
{
    public TinyEngineHarness Harness { get; private set; } = null!;
    public async Task InitializeAsync() => Harness = await TinyEngineHarness.StartAsync(imageEditing: true);
    public Task DisposeAsync() { Harness.Dispose(); return Task.CompletedTask; }
}

/// <summary>
/// The img2img / inpaint encode stage (the VAE encoder, the image and mask uploads, the noising) under the same
/// injected faults as the text-to-image path: an OOM or a non-OOM device error at every block allocation made while
/// the prompt and the image are encoded, and at every device segment allocation of the whole edit. Only the faulted
/// request fails, with its fault's exception (the positions are sampled in CI, every one with ZIMAGE_FAULT_POSITIONS=all); the allocator, the device and the budget guard return to baseline; the
/// next undisturbed edit gives the same image.
/// </summary>
public class EditFaultTests(TinyEditEngineFixture fixture) : IClassFixture<TinyEditEngineFixture>
{
    private TinyEngineHarness H => fixture.Harness;

    private static readonly RgbImage Init = new(16, 32, Enumerable.Range(0, 16 * 32 * 3).Select(i => (byte)(i * 37 % 251)).ToArray());

    private static readonly MaskImage Mask = new(16, 32, Enumerable.Range(0, 16 * 32).Select(i => (byte)(i % 16 < 8 ? 255 : 0)).ToArray());

    private static GenerationRequest Edit(bool inpaint) => new()
    {
        Prompt = "a lighthouse at dusk", Width = 16, Height = 32, Steps = 2, Guidance = 0f, Mode = GenerationMode.Turbo, Seed = 5,
        InitImage = Init, Strength = 0.9f, Mask = inpaint ? Mask : null,
    };

    /// <summary>An undisturbed edit: its image, and the block allocations from the prompt encode to the first denoising step.</summary>
    private async Task<(byte[] Pixels, long EncodeStart, long EncodeEnd)> CleanRunAsync(GenerationRequest request)
    {
        long first = H.Blocks.Allocations, encodeStart = -1, encodeEnd = -1;
        var progress = new RecordingProgress
        {
            OnReport = r =>
            {
                if (r.Stage == GenerationStage.EncodingPrompt && encodeStart < 0) encodeStart = H.Blocks.Allocations - first;
                if (r.Stage == GenerationStage.Denoising && encodeEnd < 0) encodeEnd = H.Blocks.Allocations - first;
            },
        };
        var result = await H.Pipeline.GenerateAsync(request, progress);
        Assert.Null(H.BaselineViolation());
        Assert.True(encodeStart >= 0 && encodeEnd > encodeStart, $"no encode range seen ({encodeStart}..{encodeEnd})");
        return (result.Images[0].Pixels, encodeStart, encodeEnd);
    }

    [Theory]
    [InlineData(false, DeviceFaultKind.OutOfMemory)]
    [InlineData(false, DeviceFaultKind.Error)]
    [InlineData(true, DeviceFaultKind.OutOfMemory)]
    [InlineData(true, DeviceFaultKind.Error)]
    public async Task FaultAtEveryBlockAllocationOfTheEncodeStageFailsOnlyThatEditAndLeavesNothingAllocated(bool inpaint, DeviceFaultKind kind)
    {
        var request = Edit(inpaint);
        var (reference, start, end) = await CleanRunAsync(request);
        var expected = kind == DeviceFaultKind.OutOfMemory ? typeof(DeviceOutOfMemoryException) : typeof(InjectedDeviceFaultException);
        var problems = new List<string>();
        var tags = new HashSet<string>(StringComparer.Ordinal);
        // CI: 10 positions spread over the range; ZIMAGE_FAULT_POSITIONS=all runs every one (see the notes).
        foreach (long pos in RealEngineFaultTests.SampledPositions(end - start, 10).Select(p => start + p))
        {
            H.Blocks.Arm(pos, kind);
            long injectedBefore = H.Blocks.Injected;
            Exception? error = null;
            try { await H.Pipeline.GenerateAsync(request); }
            catch (Exception e) { error = e; }
            finally { H.Blocks.Disarm(); }
            string where = $"{(inpaint ? "inpaint" : "img2img")} {kind} at block allocation {pos} ({H.Blocks.LastInjected.Tag}, {H.Blocks.LastInjected.Bytes} B)";
            if (H.Blocks.Injected != injectedBefore + 1) problems.Add($"{where}: no fault was injected");
            else if (error?.GetType() != expected) problems.Add($"{where}: the request ended with {error?.GetType().Name ?? "success"}");
            tags.Add(H.Blocks.LastInjected.Tag);
            if (H.BaselineViolation() is { } v)
            {
                problems.Add($"{where}: {v}");
                H.Rebaseline();
            }
        }
        Assert.True(problems.Count == 0, $"{end - start} positions in the encode range:{Environment.NewLine}" + string.Join(Environment.NewLine, problems));
        // The range covers the VAE encoder (tag vae) and the latents it writes, not only the text encoder.
        Assert.Contains(AllocationTags.Vae, tags);
        Assert.Contains(AllocationTags.Latents, tags);
        Assert.Equal(reference, (await CleanRunAsync(request)).Pixels);
    }

    [Theory]
    [InlineData(DeviceFaultKind.OutOfMemory)]
    [InlineData(DeviceFaultKind.Error)]
    public async Task FaultAtEverySegmentAllocationOfAnInpaintFailsOnlyThatEditAndLeavesNothingAllocated(DeviceFaultKind kind)
    {
        // 64×64: the encoder's and decoder's activations need segments of their own after the trim.
        var request = new GenerationRequest
        {
            Prompt = "x", Width = 64, Height = 64, Steps = 1, Seed = 1, Guidance = 0f, Mode = GenerationMode.Turbo, Strength = 1f,
            InitImage = new RgbImage(64, 64, Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(i % 251)).ToArray()),
            Mask = new MaskImage(64, 64, Enumerable.Range(0, 64 * 64).Select(i => (byte)(i % 64 < 32 ? 255 : 0)).ToArray()),
        };
        await RealEngineFaultTests.FaultEverySegmentAllocationAsync(H, request, kind);
    }
}
