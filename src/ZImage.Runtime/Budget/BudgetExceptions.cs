using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Budget;

/// <summary>The budget segments do not fit the device; the message shows the breakdown in GiB with two decimals.</summary>
public sealed class BudgetLayoutException : Exception
{
    /// <summary>Creates the exception from the segments.</summary>
    public BudgetLayoutException(long totalBytes, long systemReserveBytes, long baseBytes, long inferenceBytes, long bufferBytes)
        : base(Compose(totalBytes, systemReserveBytes, baseBytes, inferenceBytes, bufferBytes))
    {
        TotalBytes = totalBytes;
        SystemReserveBytes = systemReserveBytes;
        BaseBytes = baseBytes;
        InferenceBytes = inferenceBytes;
        BufferBytes = bufferBytes;
    }

    /// <summary>Device total.</summary>
    public long TotalBytes { get; }
    /// <summary>System reserve.</summary>
    public long SystemReserveBytes { get; }
    /// <summary>Base (weights).</summary>
    public long BaseBytes { get; }
    /// <summary>Inference segment.</summary>
    public long InferenceBytes { get; }
    /// <summary>Buffer segment.</summary>
    public long BufferBytes { get; }
    /// <summary>How far the segments exceed the total.</summary>
    public long OverByBytes => SystemReserveBytes + BaseBytes + InferenceBytes + BufferBytes - TotalBytes;

    private static string Compose(long total, long reserve, long @base, long inference, long buffer)
    {
        long sum = reserve + @base + inference + buffer;
        return $"The memory budget does not fit the device: system reserve {BudgetExceededException.Gib(reserve)} + base {BudgetExceededException.Gib(@base)} + " +
               $"inference {BudgetExceededException.Gib(inference)} + buffer {BudgetExceededException.Gib(buffer)} = {BudgetExceededException.Gib(sum)} > total {BudgetExceededException.Gib(total)} " +
               $"(over by {BudgetExceededException.Gib(sum - total)}). Lower the inference segment or the buffer, or free device memory.";
    }
}

/// <summary>
/// An inference-tagged allocation was refused before any device call because it would cross the inference (yellow)
/// segment. Amounts in the message are GiB with two decimals.
/// </summary>
public sealed class BudgetExceededException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="requestedBytes">Bytes charged for the refused request (rounded block size where the allocator exposes it).</param>
    /// <param name="inUseBytes">Inference bytes already in use.</param>
    /// <param name="limitBytes">The inference segment.</param>
    /// <param name="tag">The allocation tag.</param>
    public BudgetExceededException(long requestedBytes, long inUseBytes, long limitBytes, string tag)
        : base(Compose(requestedBytes, inUseBytes, limitBytes, tag))
    {
        RequestedBytes = requestedBytes;
        InUseBytes = inUseBytes;
        LimitBytes = limitBytes;
        Tag = tag;
    }

    /// <summary>Bytes the refused request was charged.</summary>
    public long RequestedBytes { get; }
    /// <summary>Inference bytes in use when it was refused.</summary>
    public long InUseBytes { get; }
    /// <summary>The inference segment.</summary>
    public long LimitBytes { get; }
    /// <summary>The allocation tag.</summary>
    public string Tag { get; }
    /// <summary>By how much the request would have crossed the segment.</summary>
    public long OverByBytes => InUseBytes + RequestedBytes - LimitBytes;

    private static string Compose(long requested, long inUse, long limit, string tag) =>
        $"Inference allocation of {Gib(requested)} for '{tag}' was refused: {Gib(inUse)} of the {Gib(limit)} inference segment is in use, " +
        $"so it needs {Gib(inUse + requested - limit)} more than the inference segment allows.";

    internal static string Gib(long bytes) => (bytes / (double)ByteSize.GiB).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) + " GiB";
}
