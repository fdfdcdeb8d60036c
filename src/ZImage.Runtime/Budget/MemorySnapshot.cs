namespace ZImage.Runtime.Budget;

/// <summary>
/// The budget state of the device. "Usage" below is max(system reserve + base + inference in use, the device-used
/// bytes of the last <see cref="BudgetGuard.ObserveDeviceMemory"/> sample), so it also sees allocator caching,
/// fragmentation and other processes when samples are fed in.
/// </summary>
public enum MemoryState
{
    /// <summary>Only the base is resident: no inference workspace in use, usage within reserve + base + inference segment.</summary>
    Green,
    /// <summary>Inference workspace is in use and stays within the inference segment (usage ≤ reserve + base + inference).</summary>
    Yellow,
    /// <summary>
    /// Eating into the buffer: usage exceeds reserve + base + inference segment, or the segments no longer fit the total
    /// (the base grew), so part of the buffer is gone, but usage is still within reserve + base + inference + buffer.
    /// </summary>
    Gray,
    /// <summary>
    /// Over budget: a device out-of-memory was seen (sticky until <see cref="BudgetGuard.ResetOutOfMemory"/>), or
    /// inference in use exceeds its segment (the limit was lowered below it), or usage exceeds reserve + base +
    /// inference + buffer, or reserve + base + inference alone exceed the total.
    /// </summary>
    Red,
}

/// <summary>
/// An immutable picture of the budget: bytes and fractions of total for every segment and the <see cref="MemoryState"/>.
/// Taking one reads fields only (no device call, no allocation beyond the record).
/// </summary>
/// <param name="TotalBytes">Device total.</param>
/// <param name="SystemReserveBytes">Memory that is not ours.</param>
/// <param name="BaseBytes">Resident base: max(measured/set base, weights allocated through the budgeted allocator).</param>
/// <param name="InferenceLimitBytes">The inference (yellow) segment.</param>
/// <param name="InferenceInUseBytes">Inference workspace currently charged.</param>
/// <param name="BufferBytes">The buffer (gray) segment.</param>
/// <param name="FreeBytes">total − reserve − base − inference − buffer, clamped at 0.</param>
/// <param name="BufferInUseBytes">How much of the buffer usage has eaten (0..buffer).</param>
/// <param name="DeviceUsedBytes">Device-used bytes of the last sample (total − driver free), or <see langword="null"/> if never sampled.</param>
/// <param name="OutOfMemorySeen">Whether a device out-of-memory was seen since the last reset.</param>
/// <param name="State">The state, as <see cref="MemoryState"/> defines it.</param>
public sealed record MemorySnapshot(
    long TotalBytes,
    long SystemReserveBytes,
    long BaseBytes,
    long InferenceLimitBytes,
    long InferenceInUseBytes,
    long BufferBytes,
    long FreeBytes,
    long BufferInUseBytes,
    long? DeviceUsedBytes,
    bool OutOfMemorySeen,
    MemoryState State)
{
    /// <summary>System reserve as a fraction of total.</summary>
    public double SystemReserveFraction => Fraction(SystemReserveBytes);
    /// <summary>Base as a fraction of total.</summary>
    public double BaseFraction => Fraction(BaseBytes);
    /// <summary>Inference segment as a fraction of total.</summary>
    public double InferenceLimitFraction => Fraction(InferenceLimitBytes);
    /// <summary>Inference in use as a fraction of total.</summary>
    public double InferenceInUseFraction => Fraction(InferenceInUseBytes);
    /// <summary>Buffer as a fraction of total.</summary>
    public double BufferFraction => Fraction(BufferBytes);
    /// <summary>Free as a fraction of total.</summary>
    public double FreeFraction => Fraction(FreeBytes);
    /// <summary>Inference segment still available.</summary>
    public long InferenceAvailableBytes => Math.Max(0, InferenceLimitBytes - InferenceInUseBytes);

    private double Fraction(long bytes) => TotalBytes <= 0 ? 0 : bytes / (double)TotalBytes;
}

/// <summary>Raised by <see cref="BudgetGuard.SnapshotChanged"/>.</summary>
public sealed class MemorySnapshotChangedEventArgs(MemorySnapshot previous, MemorySnapshot current) : EventArgs
{
    /// <summary>The snapshot last published.</summary>
    public MemorySnapshot Previous { get; } = previous;
    /// <summary>The new snapshot.</summary>
    public MemorySnapshot Current { get; } = current;
}
