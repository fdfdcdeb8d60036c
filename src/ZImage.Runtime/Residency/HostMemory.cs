using System.Globalization;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Residency;

/// <summary>Thrown when an offload rung needs more host memory for the streamed weights than the host has (or is allowed).</summary>
public sealed class InsufficientHostMemoryException : InvalidOperationException
{
    /// <summary>Creates the error.</summary>
    public InsufficientHostMemoryException(string offload, long neededBytes, long availableBytes, string source)
        : base($"--offload {offload} keeps {ByteSize.Format(neededBytes)} of weights in host memory, but only {ByteSize.Format(availableBytes)} is available ({source}); "
            + $"allowed: at most {ByteSize.Format(availableBytes)} of host weights. Use a smaller offload rung, free host memory, or raise ZImage:Budget:HostMemory.")
    {
        NeededBytes = neededBytes;
        AvailableBytes = availableBytes;
    }

    /// <summary>Host bytes the rung needs.</summary>
    public long NeededBytes { get; }

    /// <summary>Host bytes available.</summary>
    public long AvailableBytes { get; }
}

/// <summary>The host-memory budget for offloaded weights.</summary>
public static class HostMemory
{
    /// <summary>
    /// Host bytes available for streamed weights: <paramref name="configured"/> when given (e.g. <c>32GiB</c>), else
    /// <c>MemAvailable</c> from <c>/proc/meminfo</c> on Linux, else the runtime's total available memory.
    /// </summary>
    public static (long Bytes, string Source) Available(string? configured)
    {
        if (configured is { Length: > 0 }) return (ByteSize.Parse(configured), "ZImage:Budget:HostMemory = " + configured);
        try
        {
            if (File.Exists("/proc/meminfo"))
            {
                foreach (var line in File.ReadLines("/proc/meminfo"))
                {
                    if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return (long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024, "MemAvailable in /proc/meminfo");
                }
            }
        }
        catch (IOException)
        {
            // fall through to the runtime's view
        }
        return (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, "the runtime's available memory");
    }

    /// <summary>Throws <see cref="InsufficientHostMemoryException"/> when <paramref name="neededBytes"/> exceeds what is available.</summary>
    public static void Ensure(OffloadMode offload, long neededBytes, string? configured)
    {
        if (neededBytes <= 0) return;
        var (available, source) = Available(configured);
        if (neededBytes > available) throw new InsufficientHostMemoryException(ResidencyNames.Name(offload), neededBytes, available, source);
    }
}
