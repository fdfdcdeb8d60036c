using Microsoft.Extensions.Options;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Budget;

/// <summary>
/// The fixed carve-up of one device for <see cref="BudgetGuard"/>: total = system reserve + base (green) + inference
/// (yellow) + buffer (gray) + free. Unset values are detected at start from the device's memory info.
/// </summary>
public sealed class BudgetOptions
{
    /// <summary>The default buffer: 0.7 GiB (751,619,277 bytes), headroom for allocator rounding, caching and fragmentation.</summary>
    public static readonly long DefaultBufferBytes = ByteSize.Parse("0.7GiB");

    /// <summary>Device total bytes; <see langword="null"/>: detected (the backend's total).</summary>
    public long? TotalBytes { get; set; }

    /// <summary>
    /// Memory that is not ours (driver, display, other processes); <see langword="null"/>: detected as total − free at
    /// start, i.e. everything already in use before the model loads.
    /// </summary>
    public long? SystemReserveBytes { get; set; }

    /// <summary>
    /// The planned resident base (weights) until it is measured with <see cref="BudgetGuard.SetBase"/> or
    /// <see cref="BudgetGuard.MeasureBase(DeviceMemoryInfo)"/>; <see langword="null"/> means 0.
    /// </summary>
    public long? BaseBytes { get; set; }

    /// <summary>The inference (yellow) segment: the most per-request workspace held at once. The planner supplies it.</summary>
    public long InferenceBytes { get; set; }

    /// <summary>The buffer (gray) segment kept between the inference segment and the end of the device.</summary>
    public long BufferBytes { get; set; } = DefaultBufferBytes;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad value and its allowed range.</summary>
    public void Validate()
    {
        if (TotalBytes is <= 0)
            throw new ArgumentOutOfRangeException(nameof(TotalBytes), TotalBytes, "The device total must be more than 0 bytes (or null to detect).");
        if (SystemReserveBytes is < 0)
            throw new ArgumentOutOfRangeException(nameof(SystemReserveBytes), SystemReserveBytes, "The system reserve must be 0 or more bytes (or null to detect).");
        if (BaseBytes is < 0)
            throw new ArgumentOutOfRangeException(nameof(BaseBytes), BaseBytes, "The base must be 0 or more bytes (or null).");
        if (InferenceBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(InferenceBytes), InferenceBytes, "The inference segment must be 0 or more bytes.");
        if (BufferBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(BufferBytes), BufferBytes, "The buffer must be 0 or more bytes.");
        if (TotalBytes is long t && SystemReserveBytes is long r && r > t)
            throw new ArgumentOutOfRangeException(nameof(SystemReserveBytes), r, $"The system reserve must be within 0..{t} (the total).");
    }
}

/// <summary>Validates <see cref="BudgetOptions"/> for <c>services.AddOptions&lt;BudgetOptions&gt;().ValidateOnStart()</c>.</summary>
public sealed class BudgetOptionsValidator : IValidateOptions<BudgetOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, BudgetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentOutOfRangeException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }
    }
}
