using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Pipeline;

/// <summary>The planned workspace peak of one stage.</summary>
/// <param name="Name">Stage name (<c>text-encoder</c>, <c>denoise-step-i</c>, <c>vae-decode</c>).</param>
/// <param name="PeakBytes">Peak workspace bytes (allocator "allocated" bytes beyond the resident weights) during the stage.</param>
public sealed record StagePlan(string Name, long PeakBytes);

/// <summary>
/// The exact memory plan of a request: the pipeline ran in planning mode (no kernels) on a simulated device with the
/// same caching-allocator policy, so every stage peak is what the real run allocates. The device carve-up is
/// system reserve + base (weights) + inference segment + buffer + free.
/// </summary>
public sealed record MemoryPlan
{
    /// <summary>Device capacity the plan is for.</summary>
    public required long DeviceBytes { get; init; }
    /// <summary>Held back for the driver, the display and other processes.</summary>
    public required long SystemReserveBytes { get; init; }
    /// <summary>Resident weights (measured after load, or allocated on the simulated device).</summary>
    public required long BaseBytes { get; init; }
    /// <summary>The inference segment every request's workspace must fit in.</summary>
    public required long InferenceBytes { get; init; }
    /// <summary>Safety margin above the inference segment (allocator caching/rounding slack).</summary>
    public required long BufferBytes { get; init; }
    /// <summary>What is left: device − reserve − base − inference − buffer (may be negative when over-committed).</summary>
    public long FreeBytes => DeviceBytes - SystemReserveBytes - BaseBytes - InferenceBytes - BufferBytes;
    /// <summary>Per-stage workspace peaks, in execution order.</summary>
    public required IReadOnlyList<StagePlan> Stages { get; init; }
    /// <summary>The request's workspace peak: the largest stage peak.</summary>
    public long RequestPeakBytes => Stages.Count == 0 ? 0 : Stages.Max(s => s.PeakBytes);
    /// <summary>Whether the request fits the inference segment.</summary>
    public bool Fits => RequestPeakBytes <= InferenceBytes && FreeBytes >= 0;
    /// <summary>How much more device memory the request needs (0 when it fits): its excess over the inference segment plus any over-commitment of the carve-up.</summary>
    public long NeedsMoreBytes => Math.Max(0, RequestPeakBytes - InferenceBytes) + Math.Max(0, -FreeBytes);
    /// <summary>The rung of the memory ladder the plan was made for (null for engines without one).</summary>
    public Residency.ResidencyStrategy? Strategy { get; init; }
    /// <summary>Host bytes the rung keeps streamed weights in (0 when everything is resident).</summary>
    public long HostBytes { get; init; }
    /// <summary>Bytes uploaded to the device per denoising step by streamed DiT blocks (0 when resident).</summary>
    public long UploadedBytesPerStep { get; init; }
    /// <summary>Smaller settings that fit, e.g. <c>768×768 Turbo</c> (empty when it fits or nothing does).</summary>
    public IReadOnlyList<string> FittingAlternatives { get; init; } = [];

    /// <summary>A one-line verdict, e.g. "needs 1.20 GiB more than the 2.00 GiB inference segment; 768×768 Turbo fits".</summary>
    public string Describe()
    {
        if (Fits)
            return $"fits: peak {ByteSize.Format(RequestPeakBytes)} of the {ByteSize.Format(InferenceBytes)} inference segment";
        string what = FreeBytes >= 0
            ? $"needs {ByteSize.Format(RequestPeakBytes - InferenceBytes)} more than the {ByteSize.Format(InferenceBytes)} inference segment"
            : $"needs {ByteSize.Format(NeedsMoreBytes)} more: system reserve + base {ByteSize.Format(BaseBytes)} + buffer already over-commit the {ByteSize.Format(DeviceBytes)} device by {ByteSize.Format(-FreeBytes)}"
              + (RequestPeakBytes > InferenceBytes ? $", and the request's {ByteSize.Format(RequestPeakBytes)} peak exceeds the {ByteSize.Format(InferenceBytes)} inference segment" : "");
        string alt = FittingAlternatives.Count > 0 ? $"; {string.Join(", ", FittingAlternatives)} fits" : "; no smaller preset fits";
        return what + alt;
    }
}
