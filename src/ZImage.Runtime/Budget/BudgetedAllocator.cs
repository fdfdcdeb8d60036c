using System.Runtime.CompilerServices;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Budget;

/// <summary>
/// An <see cref="IDeviceAllocator"/> decorator that holds inference-tagged allocations (<see cref="AllocationTags.IsInference"/>)
/// to the <see cref="BudgetGuard"/>'s inference segment. A request that would cross it is refused with
/// <see cref="BudgetExceededException"/> before the inner allocator (and so the device) is called. The charge is the
/// rounded block size when the inner allocator exposes it (<see cref="CachingAllocator.RoundSize(long)"/>, any
/// <see cref="IAllocationSizeRounding"/>, or a rounding function given here), else the requested bytes; the same charge is returned on dispose. Any unsplit remainder the inner allocator adds
/// to <see cref="DeviceAllocation.Size"/> is not charged: that is cache overhead, which the buffer segment absorbs.
/// Weights-tagged allocations are not limited; they count toward the base. A device out-of-memory from the inner allocator
/// is recorded on the guard (state Red) and rethrown.
/// </summary>
public sealed class BudgetedAllocator : IDeviceAllocator, IAllocationCharges
{
    private readonly Func<long, long>? _round;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The allocator that does the work, e.g. <c>CachingAllocator</c>.</param>
    /// <param name="guard">The budget to charge.</param>
    /// <param name="roundSize">Overrides how a request is rounded for charging; default: <see cref="CachingAllocator.RoundSize(long)"/> or the inner's <see cref="IAllocationSizeRounding"/>, else none.</param>
    public BudgetedAllocator(IDeviceAllocator inner, BudgetGuard guard, Func<long, long>? roundSize = null)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        Guard = guard ?? throw new ArgumentNullException(nameof(guard));
        _round = roundSize ?? inner switch
        {
            IAllocationSizeRounding r => r.RoundAllocationSize,
            CachingAllocator caching => caching.RoundSize,
            _ => null,
        };
    }

    /// <summary>The decorated allocator.</summary>
    public IDeviceAllocator Inner { get; }

    /// <summary>The budget charged.</summary>
    public BudgetGuard Guard { get; }

    /// <inheritdoc />
    public IDeviceMemoryBackend Backend => Inner.Backend;

    /// <summary>What a request of <paramref name="bytes"/> is charged: the rounded block size if known, else <paramref name="bytes"/>.</summary>
    public long ChargeFor(long bytes)
    {
        if (bytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "An allocation must be at least 1 byte.");
        if (_round is null)
            return bytes;
        long rounded = _round(bytes);
        return rounded >= bytes ? rounded : throw new InvalidOperationException($"The rounding function returned {rounded} B for a {bytes} B request; it must not shrink it.");
    }

    /// <inheritdoc />
    /// <exception cref="BudgetExceededException">An inference allocation would cross the inference segment; nothing was allocated.</exception>
    public DeviceAllocation Allocate(long bytes, string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        long charge = ChargeFor(bytes);
        bool inference = AllocationTags.IsInference(tag);
        if (inference)
        {
            if (!Guard.TryCharge(charge, out long inUse, out long limit))
                throw new BudgetExceededException(charge, inUse, limit, tag);
        }
        else
        {
            Guard.AddWeights(charge);
        }

        DeviceAllocation allocation;
        try
        {
            allocation = Inner.Allocate(bytes, tag);
        }
        catch (DeviceOutOfMemoryException)
        {
            Undo(inference, charge);
            Guard.RecordOutOfMemory();
            throw;
        }
        catch
        {
            Undo(inference, charge);
            throw;
        }

        return new ChargedAllocation(allocation, this, inference, charge);
    }

    /// <inheritdoc />
    public DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged
    {
        if (length <= 0)
            throw new ArgumentOutOfRangeException(nameof(length), length, "A buffer must hold at least 1 element.");
        long bytes = checked(length * Unsafe.SizeOf<T>());
        return new DeviceBuffer<T>(Allocate(bytes, tag), length);
    }

    void IAllocationCharges.Release(bool inference, long charge) => Undo(inference, charge);

    private void Undo(bool inference, long charge)
    {
        if (inference)
            Guard.Uncharge(charge);
        else
            Guard.AddWeights(-charge);
    }
}
