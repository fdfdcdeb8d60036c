namespace ZImage.Runtime.Memory;

/// <summary>
/// The allocator could not satisfy a request even after releasing cached blocks (PyTorch's
/// <c>torch.OutOfMemoryError</c>). Carries the same breakdown PyTorch prints.
/// </summary>
public sealed class DeviceOutOfMemoryException : Exception
{
    /// <summary>Creates the exception; the message is composed from the numbers.</summary>
    public DeviceOutOfMemoryException(long requestedBytes, long allocatedBytes, long reservedBytes, long freeBytes, long totalBytes, string tag, string advice)
        : base(Compose(requestedBytes, allocatedBytes, reservedBytes, freeBytes, totalBytes, tag, advice))
    {
        RequestedBytes = requestedBytes;
        AllocatedBytes = allocatedBytes;
        ReservedBytes = reservedBytes;
        FreeBytes = freeBytes;
        TotalBytes = totalBytes;
        Tag = tag;
        Advice = advice;
    }

    /// <summary>Bytes the failing request asked for.</summary>
    public long RequestedBytes { get; }
    /// <summary>Bytes allocated by this allocator when it failed.</summary>
    public long AllocatedBytes { get; }
    /// <summary>Bytes reserved (segments) by this allocator.</summary>
    public long ReservedBytes { get; }
    /// <summary>Reserved but unallocated bytes (fragmentation / cache).</summary>
    public long ReservedButUnallocatedBytes => ReservedBytes - AllocatedBytes;
    /// <summary>Device free bytes as reported by the backend.</summary>
    public long FreeBytes { get; }
    /// <summary>Device total bytes.</summary>
    public long TotalBytes { get; }
    /// <summary>The tag of the failing request.</summary>
    public string Tag { get; }
    /// <summary>What to change, e.g. the max_split_size_mb hint PyTorch gives.</summary>
    public string Advice { get; }

    private static string Compose(long req, long alloc, long reserved, long free, long total, string tag, string advice) =>
        $"Device out of memory. Tried to allocate {ByteSize.Format(req)} for '{tag}'. Device has a total capacity of {ByteSize.Format(total)} " +
        $"of which {ByteSize.Format(free)} is free. Of the allocated memory {ByteSize.Format(alloc)} is allocated by this allocator, and " +
        $"{ByteSize.Format(reserved - alloc)} is reserved by it but unallocated. {advice}";
}
