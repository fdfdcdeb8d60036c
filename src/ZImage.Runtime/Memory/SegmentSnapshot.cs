namespace ZImage.Runtime.Memory;

/// <summary>One block of a segment in a <see cref="SegmentSnapshot"/> (like a block of <c>torch.cuda.memory_snapshot()</c>).</summary>
/// <param name="Address">Device address.</param>
/// <param name="Offset">Offset within the segment.</param>
/// <param name="Size">Block size.</param>
/// <param name="RequestedBytes">Requested bytes (0 for free blocks).</param>
/// <param name="IsAllocated">Whether it is handed out.</param>
/// <param name="Id">Allocation id (0 for free blocks).</param>
/// <param name="Tag">Tag (null for free blocks).</param>
public sealed record BlockSnapshot(long Address, long Offset, long Size, long RequestedBytes, bool IsAllocated, long Id, string? Tag);

/// <summary>One segment with its blocks in address order.</summary>
/// <param name="Address">Segment address.</param>
/// <param name="Size">Segment size.</param>
/// <param name="IsSmallPool">Whether it belongs to the small pool.</param>
/// <param name="Stream">The stream its blocks belong to.</param>
/// <param name="Blocks">Blocks in address order; they tile the segment exactly.</param>
public sealed record SegmentSnapshot(long Address, long Size, bool IsSmallPool, int Stream, IReadOnlyList<BlockSnapshot> Blocks);
