using ILGPU;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Infrastructure;

/// <summary>
/// A fake inner allocator for decorator tests: no device, counts calls and outstanding bytes per kind, and can be told
/// to fail with a device out-of-memory.
/// </summary>
internal class RecordingAllocator : IDeviceAllocator
{
    private long _nextId;
    private long _calls;
    private long _outstandingInference;
    private long _outstandingWeights;
    private long _peakInference;

    public RecordingAllocator(IDeviceMemoryBackend? backend = null) => Backend = backend ?? new FakeMemoryInfoBackend(ByteSize.GiB, ByteSize.GiB);

    public IDeviceMemoryBackend Backend { get; }
    public long Calls => Interlocked.Read(ref _calls);
    public long OutstandingInference => Interlocked.Read(ref _outstandingInference);
    public long OutstandingWeights => Interlocked.Read(ref _outstandingWeights);
    public long PeakInference => Interlocked.Read(ref _peakInference);
    public bool ThrowOutOfMemory { get; set; }

    /// <summary>The size the fake hands out; default: exactly the request.</summary>
    protected virtual long BlockSize(long bytes) => bytes;

    public DeviceAllocation Allocate(long bytes, string tag)
    {
        Interlocked.Increment(ref _calls);
        if (ThrowOutOfMemory)
            throw new DeviceOutOfMemoryException(bytes, 0, 0, 0, ByteSize.GiB, tag, "fake");
        long size = BlockSize(bytes);
        if (AllocationTags.IsInference(tag))
        {
            long now = Interlocked.Add(ref _outstandingInference, size);
            long peak;
            while (now > (peak = Interlocked.Read(ref _peakInference)) && Interlocked.CompareExchange(ref _peakInference, now, peak) != peak)
            {
            }
        }
        else
        {
            Interlocked.Add(ref _outstandingWeights, size);
        }

        return new FakeAllocation(this, Interlocked.Increment(ref _nextId), tag, bytes, size);
    }

    public DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged =>
        new(Allocate(length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), tag), length);

    private void Release(FakeAllocation a)
    {
        if (AllocationTags.IsInference(a.Tag))
            Interlocked.Add(ref _outstandingInference, -a.Size);
        else
            Interlocked.Add(ref _outstandingWeights, -a.Size);
    }

    private sealed class FakeSegment(long size) : DeviceSegment(0x1000, size)
    {
        public override ArrayView<byte> GetByteView(long offset, long length) => throw new NotSupportedException("The recording allocator has no storage.");
    }

    private sealed class FakeAllocation(RecordingAllocator owner, long id, string tag, long requested, long size) : DeviceAllocation
    {
        private int _disposed;
        public override long Id => id;
        public override string Tag => tag;
        public override long RequestedBytes => requested;
        public override long Size => size;
        public override DeviceSegment Segment { get; } = new FakeSegment(size);
        public override long Offset => 0;
        public override bool IsDisposed => Volatile.Read(ref _disposed) != 0;

        public override void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
                ThrowIfDisposed();
            owner.Release(this);
        }
    }
}

/// <summary>A recording allocator that rounds like PyTorch's small-block rule (multiples of 512 B) and says so.</summary>
internal sealed class RoundingRecordingAllocator : RecordingAllocator, ZImage.Runtime.Budget.IAllocationSizeRounding
{
    public long RoundAllocationSize(long bytes) => (bytes + 511) / 512 * 512;

    protected override long BlockSize(long bytes) => RoundAllocationSize(bytes);
}
