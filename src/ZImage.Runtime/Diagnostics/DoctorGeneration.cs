using System.Diagnostics;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Hosting;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Pipeline;
using ZImage.Runtime.Pipeline.Engine;

namespace ZImage.Runtime.Diagnostics;

/// <summary>What the doctor's generation section runs on a device.</summary>
/// <param name="Model">Description of the model.</param>
/// <param name="Config">The config of the random-weight model (null: the tiny demo model).</param>
/// <param name="WeightDType">The matrices' dtype.</param>
/// <param name="Sizes">Square image sides, one run each.</param>
/// <param name="Steps">Denoising steps per run.</param>
internal sealed record DoctorGenerationPlan(string Model, ZImageConfig? Config, TensorDType WeightDType, IReadOnlyList<int> Sizes, int Steps)
{
    /// <summary>On a GPU: the real Z-Image-Turbo config (embedded) with seeded random bf16 weights at 512² and 1024², 8 steps.</summary>
    public static DoctorGenerationPlan Gpu { get; } = new(
        "Z-Image-Turbo config (embedded) with seeded random bf16 weights (no checkpoint)", ZImageConfig.Turbo, TensorDType.BF16, [512, 1024], 8);

    /// <summary>On ILGPU's CPU accelerator: the tiny demo config (seeded random f32 weights) at 64², 2 steps.</summary>
    public static DoctorGenerationPlan Cpu { get; } = new("the tiny demo config with seeded random f32 weights", null, TensorDType.F32, [64], 2);

    /// <summary>The plan for a device: <see cref="Gpu"/> on CUDA, <see cref="Cpu"/> otherwise.</summary>
    public static DoctorGenerationPlan For(bool isCuda) => isCuda ? Gpu : Cpu;
}

/// <summary>One stage of a doctor generation run.</summary>
/// <param name="Name">The stage (text_encoder, step_1, vae_decode, ...).</param>
/// <param name="Ms">Wall time.</param>
/// <param name="PlannedPeakBytes">The exact plan's workspace peak of the stage.</param>
/// <param name="MeasuredPeakBytes">The allocator's measured workspace peak.</param>
/// <param name="Ok">Measured ≤ planned.</param>
internal sealed record DoctorStage(string Name, double Ms, long PlannedPeakBytes, long MeasuredPeakBytes, bool Ok);

/// <summary>One doctor generation run.</summary>
/// <param name="Width">Image width.</param>
/// <param name="Height">Image height.</param>
/// <param name="Steps">Denoising steps.</param>
/// <param name="Ok">Image of the right size, every stage within its plan, device memory within the carve-up.</param>
/// <param name="TotalMs">Wall time of the generation.</param>
/// <param name="Stages">Per stage: time, planned and measured peaks.</param>
/// <param name="DeviceUsedPeakBytes">The device's own used memory (<c>cuMemGetInfo</c>: total − free), largest sample during the run; null on the CPU.</param>
/// <param name="CarveUpBytes">The BudgetGuard carve-up: system reserve + base (weights) + inference segment + buffer.</param>
/// <param name="DeviceUsedWithinCarveUp">Whether <see cref="DeviceUsedPeakBytes"/> ≤ <see cref="CarveUpBytes"/>; null when not sampled.</param>
/// <param name="DeviceMemoryNote">Why the device memory is not compared (CPU), or null.</param>
/// <param name="Detail">What failed, or null.</param>
internal sealed record DoctorGenerationRun(int Width, int Height, int Steps, bool Ok, double TotalMs, IReadOnlyList<DoctorStage> Stages,
    long? DeviceUsedPeakBytes, long CarveUpBytes, bool? DeviceUsedWithinCarveUp, string? DeviceMemoryNote, string? Detail);

/// <summary>The doctor's <c>generation</c> section.</summary>
/// <param name="Ran">False with <c>--quick</c>.</param>
/// <param name="Model">What ran.</param>
/// <param name="Runs">One row per size.</param>
/// <param name="Seconds">Wall time, including the model build.</param>
internal sealed record DoctorGeneration(bool Ran, string Model, IReadOnlyList<DoctorGenerationRun> Runs, double Seconds)
{
    /// <summary>True when skipped or every run passed.</summary>
    public bool Ok => !Ran || (Runs.Count > 0 && Runs.All(r => r.Ok));
}

/// <summary>
/// The doctor's generation section: seeded random-weight generations through the real engine, allocator and budget
/// guard, checking each stage's measured allocator peak against the exact plan and, on CUDA, the device's own used
/// memory (sampled with <c>cuMemGetInfo</c> at every progress report) against the BudgetGuard carve-up.
/// </summary>
internal static class DoctorGenerationCheck
{
    /// <summary>The note on the CPU accelerator, which has no device memory of its own to sample.</summary>
    public const string CpuMemoryNote = "not available on ILGPU's CPU accelerator: it has no device memory of its own (cuMemGetInfo is CUDA's); only the allocator peaks are compared";

    /// <summary>Runs <paramref name="plan"/> on the device the engine selects.</summary>
    /// <param name="plan">What to run (<see cref="DoctorGenerationPlan.For"/>).</param>
    /// <param name="forceCpu">Use ILGPU's CPU accelerator.</param>
    /// <param name="deviceIndex">The CUDA device ordinal otherwise.</param>
    /// <param name="cancellationToken">Cancels the runs.</param>
    public static async Task<DoctorGeneration> RunAsync(DoctorGenerationPlan plan, bool forceCpu, int deviceIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var sw = Stopwatch.StartNew();
        var runs = new List<DoctorGenerationRun>();
        var engine = ZImageEngine.Open(null, new ZImageEngineOptions { ForceCpu = forceCpu, DeviceIndex = deviceIndex, RandomConfig = plan.Config, WeightDType = plan.WeightDType });
        bool isCuda = engine.IsCuda;
        var options = new ZImageOptions { Device = forceCpu ? DevicePreference.Cpu : DevicePreference.Auto, DeviceIndex = deviceIndex, WeightDType = plan.WeightDType };
        options.Budget.SizingWidth = plan.Sizes.Max();
        options.Budget.SizingHeight = plan.Sizes.Max();
        options.Presets.DefaultResolution = null;
        using var pipeline = new ImagePipeline(engine, options);
        await pipeline.StartAsync(cancellationToken).ConfigureAwait(false);
        foreach (int size in plan.Sizes)
        {
            try
            {
                long peakUsed = -1;
                var progress = new SamplingProgress(() =>
                {
                    if (isCuda && pipeline.Budget?.Sample().DeviceUsedBytes is long used) peakUsed = Math.Max(peakUsed, used);
                });
                var result = await pipeline.GenerateAsync(new GenerationRequest
                {
                    Prompt = "a lighthouse at dusk", Width = size, Height = size, Steps = plan.Steps, Seed = 42, Mode = GenerationMode.Turbo,
                }, progress, cancellationToken).ConfigureAwait(false);
                progress.Sample();
                var snap = pipeline.Memory;
                long carveUp = snap.SystemReserveBytes + snap.BaseBytes + snap.InferenceLimitBytes + snap.BufferBytes;
                var stages = result.Stages.Select(s => new DoctorStage(s.Name, s.Duration.TotalMilliseconds, s.PlannedPeakBytes, s.MeasuredPeakBytes,
                    s.MeasuredPeakBytes <= s.PlannedPeakBytes)).ToList();
                long? used = isCuda && peakUsed >= 0 ? peakUsed : null;
                bool? withinCarveUp = used is long u ? u <= carveUp : null;
                bool imageOk = result.Images.Count == 1 && result.Images[0].Width == size && result.Images[0].Height == size;
                bool ok = imageOk && stages.All(s => s.Ok) && withinCarveUp != false;
                string? detail = ok ? null
                    : !imageOk ? "the image has the wrong size"
                    : !stages.All(s => s.Ok) ? "a stage's measured allocator peak exceeds its planned peak"
                    : "the device reports more memory in use than the BudgetGuard carve-up";
                runs.Add(new DoctorGenerationRun(size, size, plan.Steps, ok, result.TotalTime.TotalMilliseconds, stages, used, carveUp, withinCarveUp,
                    isCuda ? null : CpuMemoryNote, detail));
            }
            catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
            {
                runs.Add(new DoctorGenerationRun(size, size, plan.Steps, false, 0, [], null, 0, null, null, ex.GetType().Name + ": " + ex.Message));
            }
        }
        return new DoctorGeneration(true, plan.Model, runs, sw.Elapsed.TotalSeconds);
    }

    private sealed class SamplingProgress(Action sample) : IProgress<GenerationProgress>
    {
        public void Sample() => sample();
        public void Report(GenerationProgress value) => sample();
    }
}
