using System.Runtime.CompilerServices;
using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Pipeline;

/// <summary>
/// An allocator decorator that keeps the current and peak workspace (every tag but <c>weights</c>) and the weight bytes,
/// counting each block at the allocator's rounded size (PyTorch <c>round_size</c>), which is exactly what
/// <see cref="Budget.BudgetedAllocator"/> charges against the inference segment. Rounded sizes do not depend on what the
/// cache holds, so a plan on a fresh simulated device and a real run on a warm cache count the same bytes.
/// </summary>
public sealed class WorkspaceTracker : IDeviceAllocator, IAllocationCharges
{
    private readonly Func<long, long> _round;
    private long _workspace, _peak, _weights;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="roundSize"/> is the inner allocator's rounding (e.g. <see cref="CachingAllocator.RoundSize(long)"/>).</summary>
    public WorkspaceTracker(IDeviceAllocator inner, Func<long, long> roundSize)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _round = roundSize ?? throw new ArgumentNullException(nameof(roundSize));
    }

    /// <summary>The decorated allocator.</summary>
    public IDeviceAllocator Inner { get; }

    /// <inheritdoc />
    public IDeviceMemoryBackend Backend => Inner.Backend;

    /// <summary>Workspace bytes allocated now (rounded).</summary>
    public long WorkspaceBytes => Interlocked.Read(ref _workspace);

    /// <summary>Peak workspace bytes since <see cref="ResetPeak"/>.</summary>
    public long PeakWorkspaceBytes => Interlocked.Read(ref _peak);

    /// <summary>Weight bytes allocated now (rounded).</summary>
    public long WeightBytes => Interlocked.Read(ref _weights);

    /// <summary>Starts a new peak window at the current workspace.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peak, Interlocked.Read(ref _workspace));

    /// <inheritdoc />
    public DeviceAllocation Allocate(long bytes, string tag)
    {
        var inner = Inner.Allocate(bytes, tag);
        long charge = _round(bytes);
        bool workspace = AllocationTags.IsInference(tag);
        if (workspace)
        {
            long now = Interlocked.Add(ref _workspace, charge);
            long peak;
            while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak) { }
        }
        else
        {
            Interlocked.Add(ref _weights, charge);
        }
        return new ChargedAllocation(inner, this, workspace, charge);
    }

    /// <inheritdoc />
    public DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged =>
        new(Allocate(checked(length * Unsafe.SizeOf<T>()), tag), length);

    void IAllocationCharges.Release(bool workspace, long charge) => Interlocked.Add(ref workspace ? ref _workspace : ref _weights, -charge);
}
