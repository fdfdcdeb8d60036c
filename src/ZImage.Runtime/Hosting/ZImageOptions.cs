using ZImage.Runtime.Compute;
using ZImage.Runtime.Pipeline;

namespace ZImage.Runtime.Hosting;

/// <summary>Which accelerator runs the kernels.</summary>
public enum DevicePreference
{
    /// <summary>The first CUDA GPU, else ILGPU's CPU accelerator (slow; tests and demos only).</summary>
    Auto,
    /// <summary>ILGPU's CPU accelerator.</summary>
    Cpu,
    /// <summary>A CUDA GPU (<see cref="ZImageOptions.DeviceIndex"/>); the start fails with the driver's reason when there is none.</summary>
    Cuda,
}

/// <summary>What to do with out-of-range steps or guidance.</summary>
public enum DeviceMemoryBackendKind
{
    /// <summary>Segments are ILGPU buffers (<c>cuMemAlloc</c> on CUDA).</summary>
    Accelerator,
    /// <summary>Segments come from CUDA's stream-ordered allocator (<c>cuMemAllocAsync</c>); CUDA only.</summary>
    StreamOrderedPool,
}

/// <summary>What to do with a request whose steps or guidance are out of range.</summary>
public enum OutOfRangePolicy
{
    /// <summary>Throw <see cref="InvalidGenerationRequestException"/> naming the value and the range.</summary>
    Reject,
    /// <summary>Run as the Standard preset and add a warning to the result (the original service's behaviour).</summary>
    ResetToStandard,
}

/// <summary>What to do with a request whose exact plan does not fit the inference segment.</summary>
public enum OverBudgetPolicy
{
    /// <summary>Throw <see cref="RequestExceedsBudgetException"/> (how much more it needs, which settings fit).</summary>
    Reject,
    /// <summary>Run the largest smaller resolution preset that fits and add a warning to the result.</summary>
    Downscale,
}

/// <summary>What a submission does when the device queue is full.</summary>
public enum QueueFullPolicy
{
    /// <summary>Wait (cancellably, FIFO) for a queue slot.</summary>
    Wait,
    /// <summary>Throw <see cref="PipelineBusyException"/>.</summary>
    Reject,
}

/// <summary>Options of the ZImage pipeline (section <c>ZImage</c> by convention).</summary>
public sealed class ZImageOptions
{
    /// <summary>A diffusers-format Z-Image checkpoint folder; null runs a tiny random-weight model built in memory (a demo of the pipeline and the memory guard, not of image quality).</summary>
    public string? ModelDirectory { get; set; }

    /// <summary>Load the VAE encoder so that requests may carry an init image (img2img) and a mask (inpaint); its weights join the resident base.</summary>
    public bool ImageEditing { get; set; }

    /// <summary>
    /// LoRAs merged into the transformer at load, in order, each with its scale (diffusers/PEFT, kohya or
    /// <c>diffusion_model.</c> key format; see <see cref="Models.Lora.LoraAdapter"/>). They need <see cref="ModelDirectory"/>.
    /// An engine option, not a request field: the merge happens once, when the weights are materialized, so a request
    /// costs nothing extra; a different set of LoRAs is a different engine (restart the host or the CLI run).
    /// </summary>
    public List<Models.Lora.LoraSpec> Loras { get; set; } = [];

    /// <summary>The accelerator.</summary>
    public DevicePreference Device { get; set; } = DevicePreference.Auto;

    /// <summary>The CUDA device ordinal (0 = the first GPU) for <see cref="DevicePreference.Auto"/> and <see cref="DevicePreference.Cuda"/>.</summary>
    public int DeviceIndex { get; set; }

    /// <summary>The device dtype of large weight matrices (F32, F16 or BF16) that <c>--weights auto</c> resolves to.</summary>
    public TensorDType WeightDType { get; set; } = TensorDType.BF16;

    /// <summary>The memory ladder: offload, weight format, activations, VAE tiling (default: auto, the fastest rung whose exact plan fits).</summary>
    public Residency.ResidencyOptions Residency { get; set; } = new();

    /// <summary>Caching-allocator settings in <c>PYTORCH_CUDA_ALLOC_CONF</c> syntax, e.g. <c>max_split_size_mb:128</c>. Plans use the same settings.</summary>
    public string AllocatorSettings { get; set; } = "";

    /// <summary>The memory carve-up.</summary>
    public MemoryBudgetOptions Budget { get; set; } = new();

    /// <summary>Mode and resolution presets.</summary>
    public PresetOptions Presets { get; set; } = new();

    /// <summary>Accepted ranges and the policies for values outside them.</summary>
    public LimitOptions Limits { get; set; } = new();

    /// <summary>The serial device queue.</summary>
    public QueueOptions Queue { get; set; } = new();

    /// <summary>Release cached allocator segments to the device after each generation (slower next request, lower idle footprint).</summary>
    public bool TrimAfterGeneration { get; set; }

    /// <summary>Report a cheap latent preview with each denoising-step progress report.</summary>
    public bool EnablePreviews { get; set; }

    /// <summary>
    /// Where the caching allocator gets its segments: <see cref="DeviceMemoryBackendKind.Accelerator"/> (ILGPU buffers:
    /// <c>cuMemAlloc</c> on a GPU, host memory on the CPU accelerator) or <see cref="DeviceMemoryBackendKind.StreamOrderedPool"/>
    /// (<c>cuMemAllocAsync</c> from the device's default pool; start fails with the driver's reason where it is not available).
    /// </summary>
    public DeviceMemoryBackendKind MemoryBackend { get; set; } = DeviceMemoryBackendKind.Accelerator;

    /// <summary>Seed of the tiny random-weight model used when <see cref="ModelDirectory"/> is null.</summary>
    public int RandomModelSeed { get; set; } = 20260101;
}

/// <summary>The device memory carve-up: system reserve, base (weights, measured after load), inference segment, buffer.</summary>
public sealed class MemoryBudgetOptions
{
    /// <summary>Device capacity to plan for (e.g. <c>24GiB</c>); null uses what the device reports.</summary>
    public string? DeviceMemory { get; set; }

    /// <summary>
    /// Held back for the driver and other processes. Null detects it when the pipeline is created, before any weight
    /// is loaded, as device total minus device free; when <see cref="DeviceMemory"/> names a hypothetical device
    /// (plans for another GPU) nothing can be detected and <see cref="DefaultPlanningSystemReserve"/> is used.
    /// </summary>
    public string? SystemReserve { get; set; }

    /// <summary>
    /// The reserve assumed when planning for a device that is not this one: a CUDA context plus cuBLAS-free kernels
    /// and the display typically hold 0.3–0.6 GiB, so 512 MiB is a middle estimate.
    /// </summary>
    public const string DefaultPlanningSystemReserve = "512MiB";

    /// <summary>The inference segment; null derives it from the exact plan of the sizing request (<see cref="SizingWidth"/> × <see cref="SizingHeight"/>, CFG, full-length prompts).</summary>
    public string? Inference { get; set; }

    /// <summary>Margin kept free above the inference segment (default 0.7 GiB, as the BudgetGuard default).</summary>
    public string Buffer { get; set; } = "0.7GiB";

    /// <summary>Width of the largest request the host should admit (sizes the derived inference segment).</summary>
    public int SizingWidth { get; set; } = 1024;

    /// <summary>Height of the sizing request.</summary>
    public int SizingHeight { get; set; } = 1024;
}

/// <summary>Steps and guidance of one mode.</summary>
public sealed class ModePresetOptions
{
    /// <summary>Denoising steps.</summary>
    public int Steps { get; set; }

    /// <summary>Guidance scale (0 = no CFG).</summary>
    public float Guidance { get; set; }
}

/// <summary>A width and height in pixels.</summary>
public sealed class SizeOptions
{
    /// <summary>Width (multiple of 16).</summary>
    public int Width { get; set; }

    /// <summary>Height (multiple of 16).</summary>
    public int Height { get; set; }
}

/// <summary>Mode and resolution presets.</summary>
public sealed class PresetOptions
{
    /// <summary>Turbo: 8 steps, guidance 0.</summary>
    public ModePresetOptions Turbo { get; set; } = new() { Steps = 8, Guidance = 0f };
    /// <summary>Standard: 25 steps, guidance 4.0.</summary>
    public ModePresetOptions Standard { get; set; } = new() { Steps = 25, Guidance = 4.0f };
    /// <summary>Quality: 50 steps, guidance 5.0.</summary>
    public ModePresetOptions Quality { get; set; } = new() { Steps = 50, Guidance = 5.0f };
    /// <summary>512×512.</summary>
    public SizeOptions Square512 { get; set; } = new() { Width = 512, Height = 512 };
    /// <summary>768×768.</summary>
    public SizeOptions Square768 { get; set; } = new() { Width = 768, Height = 768 };
    /// <summary>1024×1024.</summary>
    public SizeOptions Square1024 { get; set; } = new() { Width = 1024, Height = 1024 };
    /// <summary>16:9, 1024×576.</summary>
    public SizeOptions Landscape16x9 { get; set; } = new() { Width = 1024, Height = 576 };
    /// <summary>9:16, 576×1024.</summary>
    public SizeOptions Portrait9x16 { get; set; } = new() { Width = 576, Height = 1024 };
    /// <summary>The size of requests that give none; null means 1024×1024 with a model folder and 64×64 for the tiny random model.</summary>
    public ResolutionPreset? DefaultResolution { get; set; }

    /// <summary>The preset of <paramref name="mode"/>.</summary>
    public ModePresetOptions For(GenerationMode mode) => mode switch
    {
        GenerationMode.Turbo => Turbo,
        GenerationMode.Standard => Standard,
        GenerationMode.Quality => Quality,
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Known modes: Turbo, Standard, Quality."),
    };

    /// <summary>The size of <paramref name="preset"/>.</summary>
    public SizeOptions For(ResolutionPreset preset) => preset switch
    {
        ResolutionPreset.Square512 => Square512,
        ResolutionPreset.Square768 => Square768,
        ResolutionPreset.Square1024 => Square1024,
        ResolutionPreset.Landscape16x9 => Landscape16x9,
        ResolutionPreset.Portrait9x16 => Portrait9x16,
        _ => throw new ArgumentOutOfRangeException(nameof(preset), preset, "Known presets: Square512, Square768, Square1024, Landscape16x9, Portrait9x16."),
    };
}

/// <summary>Accepted ranges and policies.</summary>
public sealed class LimitOptions
{
    /// <summary>Fewest steps accepted.</summary>
    public int MinSteps { get; set; } = 1;
    /// <summary>Most steps accepted.</summary>
    public int MaxSteps { get; set; } = 50;
    /// <summary>Smallest guidance accepted.</summary>
    public float MinGuidance { get; set; }
    /// <summary>Largest guidance accepted.</summary>
    public float MaxGuidance { get; set; } = 7f;
    /// <summary>Smallest width/height (a multiple of 16).</summary>
    public int MinDimension { get; set; } = 16;
    /// <summary>Largest width/height (a multiple of 16).</summary>
    public int MaxDimension { get; set; } = 2048;
    /// <summary>Most images per request.</summary>
    public int MaxImagesPerRequest { get; set; } = 4;
    /// <summary>
    /// What happens to out-of-range steps or guidance: <see cref="OutOfRangePolicy.Reject"/> (the default) throws
    /// <see cref="InvalidGenerationRequestException"/> naming the value and the range; <see cref="OutOfRangePolicy.ResetToStandard"/>
    /// runs the Standard preset with a warning (the original service's behaviour) and must be asked for.
    /// </summary>
    public OutOfRangePolicy OutOfRange { get; set; } = OutOfRangePolicy.Reject;
    /// <summary>What happens to a request that does not fit the inference segment.</summary>
    public OverBudgetPolicy OverBudget { get; set; } = OverBudgetPolicy.Reject;
}

/// <summary>The serial device queue.</summary>
public sealed class QueueOptions
{
    /// <summary>Requests that may wait behind the running one.</summary>
    public int Capacity { get; set; } = 16;
    /// <summary>What a submission does when the queue is full.</summary>
    public QueueFullPolicy FullPolicy { get; set; } = QueueFullPolicy.Wait;
}
