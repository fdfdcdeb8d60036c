using ILGPU;
using ILGPU.Runtime;
using ZImage.Runtime.Compute;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Residency;

/// <summary>What a <see cref="LayerRing{T}"/> did, in order (the trace that shows the upload/compute overlap).</summary>
public enum RingEventKind
{
    /// <summary>Layer <see cref="RingEvent.Layer"/>'s weights were written into its slot's host staging buffer.</summary>
    Staged,
    /// <summary>The host waited for the compute stream (the slot's previous layer is no longer read).</summary>
    ComputeWaited,
    /// <summary>The copy of the staged layer into its device slot was issued on the copy stream.</summary>
    UploadIssued,
    /// <summary>The host waited for the copy stream (the layer about to be returned is on the device).</summary>
    UploadWaited,
    /// <summary>The layer was handed to the model, which then queues its compute.</summary>
    Returned,
}

/// <summary>One ring event: what, which layer, and the payload bytes for <see cref="RingEventKind.UploadIssued"/>.</summary>
public readonly record struct RingEvent(RingEventKind Kind, int Layer, long Bytes);

/// <summary>
/// Moves staged layer weights into the ring's device slots. The accelerator implementation owns a copy stream of its
/// own and one host staging buffer per slot, page-locked (pinned) where the accelerator allows it, so the copy of layer
/// <c>i+1</c> runs on the copy stream while layer <c>i</c> computes on the compute stream (on CUDA a copy from pinned
/// memory is a true asynchronous DMA; the CPU accelerator's copies are synchronous memcpys, so there only the order is
/// observable). The planning implementation has no storage and does nothing, so a planning ring runs the identical
/// sequence of events.
/// </summary>
internal abstract class SlotUploader : IDisposable
{
    /// <summary>Whether staging buffers have storage (false in planning: providers write nothing).</summary>
    public abstract bool HasStorage { get; }

    /// <summary>Whether the staging buffers are page-locked (pinned) host memory.</summary>
    public abstract bool PageLocked { get; }

    /// <summary>The staging buffer of <paramref name="slot"/> (empty without storage).</summary>
    public abstract Span<byte> Staging(int slot);

    /// <summary>Issues the copy of <paramref name="slot"/>'s staging buffer into <paramref name="destination"/> on the copy stream.</summary>
    public abstract void Issue(int slot, DeviceAllocation destination);

    /// <summary>Waits for every issued copy.</summary>
    public abstract void WaitUploads();

    /// <summary>Waits for the compute stream's queued work.</summary>
    public abstract void WaitCompute();

    /// <inheritdoc />
    public abstract void Dispose();

    /// <summary>The uploader for <paramref name="ops"/>: a copy stream and pinned staging on a kernel accelerator, no-ops when planning.</summary>
    public static SlotUploader For(IComputeOps? ops, int slots, long slotBytes) =>
        ops is KernelComputeOps k ? new StreamSlotUploader(k.Context.Accelerator, k.Context.Stream, slots, slotBytes) : new PlanningSlotUploader();
}

/// <summary>The planning uploader: no storage, no streams.</summary>
internal sealed class PlanningSlotUploader : SlotUploader
{
    public override bool HasStorage => false;
    public override bool PageLocked => false;
    public override Span<byte> Staging(int slot) => [];
    public override void Issue(int slot, DeviceAllocation destination) { }
    public override void WaitUploads() { }
    public override void WaitCompute() { }
    public override void Dispose() { }
}

/// <summary>A copy stream and one staging buffer per slot on a real accelerator.</summary>
internal sealed class StreamSlotUploader : SlotUploader
{
    private readonly AcceleratorStream _compute;
    private readonly AcceleratorStream _copy;
    private readonly PageLockedArray1D<byte>?[] _pinned;
    private readonly byte[]?[] _pageable;

    public StreamSlotUploader(Accelerator accelerator, AcceleratorStream compute, int slots, long slotBytes)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        _compute = compute ?? throw new ArgumentNullException(nameof(compute));
        if (slotBytes > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(slotBytes), slotBytes, $"A ring slot of {slotBytes} B exceeds the {int.MaxValue} B a staging buffer can hold.");
        _copy = accelerator.CreateStream();
        _pinned = new PageLockedArray1D<byte>?[slots];
        _pageable = new byte[]?[slots];
        bool pinned = true;
        try
        {
            for (int s = 0; s < slots; s++)
            {
                if (pinned)
                {
                    try { _pinned[s] = accelerator.AllocatePageLocked1D<byte>(slotBytes); continue; }
                    catch (Exception e) when (e is NotSupportedException or InvalidOperationException or AcceleratorException) { pinned = false; }
                }
                _pageable[s] = new byte[slotBytes];
            }
        }
        catch
        {
            Dispose();
            throw;
        }
        PageLocked = pinned;
    }

    public override bool HasStorage => true;

    public override bool PageLocked { get; }

    public override Span<byte> Staging(int slot) => _pinned[slot] is { } p ? p.Span : _pageable[slot];

    public override void Issue(int slot, DeviceAllocation destination)
    {
        ArrayView1D<byte, Stride1D.Dense> view = destination.GetView<byte>(Staging(slot).Length);
        if (_pinned[slot] is { } p) view.CopyFromPageLockedAsync(_copy, p);
        else view.CopyFromCPU(_copy, _pageable[slot]!);
    }

    public override void WaitUploads() => _copy.Synchronize();

    public override void WaitCompute() => _compute.Synchronize();

    public override void Dispose()
    {
        foreach (var p in _pinned) p?.Dispose();
        _copy.Dispose();
    }
}
