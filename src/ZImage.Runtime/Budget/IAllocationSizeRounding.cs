namespace ZImage.Runtime.Budget;

/// <summary>
/// Implemented by allocators that can say, without allocating, the block size they would hand out for a request
/// (PyTorch's <c>round_size</c>: 512 B rounding, power-of-two divisions). <see cref="BudgetedAllocator"/> charges that
/// size against the inference segment when the inner allocator implements this, else the requested bytes.
/// </summary>
public interface IAllocationSizeRounding
{
    /// <summary>The block size a request of <paramref name="bytes"/> bytes would be rounded to (≥ <paramref name="bytes"/>).</summary>
    long RoundAllocationSize(long bytes);
}
