using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Budget;

/// <summary>An allocator decorator that counts each block it hands out and gives the count back when the block is freed.</summary>
internal interface IAllocationCharges
{
    /// <summary>Gives back what a block was charged; <paramref name="inference"/> says which account (workspace or weights).</summary>
    void Release(bool inference, long charge);
}

/// <summary>
/// A block of the inner allocator, handed out by a counting decorator (<see cref="BudgetedAllocator"/>,
/// <c>WorkspaceTracker</c>): it forwards everything to the inner block and, on its one dispose, frees the inner block
/// and gives the charge back, even when the inner dispose throws.
/// </summary>
internal sealed class ChargedAllocation(DeviceAllocation inner, IAllocationCharges owner, bool inference, long charge) : DeviceAllocation
{
    private int _released;

    public override long Id => inner.Id;
    public override string Tag => inner.Tag;
    public override long RequestedBytes => inner.RequestedBytes;
    public override long Size => inner.Size;
    public override DeviceSegment Segment => inner.Segment;
    public override long Offset => inner.Offset;
    public override bool IsDisposed => Volatile.Read(ref _released) != 0 || inner.IsDisposed;

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
            throw new ObjectDisposedException($"DeviceAllocation#{Id}({Tag})", "The device block was freed twice.");
        try
        {
            inner.Dispose();
        }
        finally
        {
            owner.Release(inference, charge);
        }
    }
}
