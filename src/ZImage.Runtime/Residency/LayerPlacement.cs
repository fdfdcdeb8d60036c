namespace ZImage.Runtime.Residency;

/// <summary>Where a model's repeated layers (text-encoder decoder layers, DiT blocks) live.</summary>
public enum LayerPlacement
{
    /// <summary>Uploaded once at load and kept on the device.</summary>
    Resident,
    /// <summary>Kept in host memory and streamed through a ring of two device slots (<see cref="LayerRing{T}"/>).</summary>
    Streamed,
}

/// <summary>What a streamed model reports about its ring.</summary>
/// <param name="HostBytes">Bytes of the streamed layers' weights, held in host memory (the memory-mapped checkpoint).</param>
/// <param name="SlotBytes">Device bytes of the ring (all slots).</param>
/// <param name="UploadedBytes">Bytes written into the slots so far.</param>
/// <param name="StagingBytes">Host bytes of the ring's staging buffers (one per slot; pinned where the accelerator allows).</param>
public readonly record struct RingReport(long HostBytes, long SlotBytes, long UploadedBytes, long StagingBytes = 0)
{
    /// <summary>Sums two reports.</summary>
    public static RingReport operator +(RingReport a, RingReport b) =>
        new(a.HostBytes + b.HostBytes, a.SlotBytes + b.SlotBytes, a.UploadedBytes + b.UploadedBytes, a.StagingBytes + b.StagingBytes);

    internal static RingReport Of<T>(LayerRing<T>? ring) where T : class =>
        ring is null ? default : new(ring.HostBytes, ring.SlotBytes * ring.SlotCount, ring.UploadedBytes, ring.StagingBytes);
}
