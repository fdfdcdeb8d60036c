using ILGPU;
using ILGPU.Runtime;
using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>Temporary test allocator: one accelerator buffer per allocation (until the CachingAllocator lands).</summary>
internal sealed class TestAllocator : IDeviceAllocator
{
    private readonly Accelerator _accelerator;
    private long _nextId;

    public TestAllocator(Accelerator accelerator) => _accelerator = accelerator;

    public IDeviceMemoryBackend Backend => throw new NotSupportedException("The test allocator has no backend.");

    public DeviceAllocation Allocate(long bytes, string tag)
    {
        long size = Math.Max(512, (bytes + 511) / 512 * 512);
        var buffer = _accelerator.Allocate1D<byte>(size);
        return new Block(++_nextId, tag, bytes, new Segment(buffer));
    }

    public DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged =>
        new(Allocate(length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), tag), length);

    private sealed class Segment(MemoryBuffer1D<byte, Stride1D.Dense> buffer) : DeviceSegment(0, buffer.Length)
    {
        public MemoryBuffer1D<byte, Stride1D.Dense> Buffer { get; } = buffer;
        public override ArrayView<byte> GetByteView(long offset, long length) => Buffer.View.SubView(offset, length);
    }

    private sealed class Block(long id, string tag, long requested, Segment segment) : DeviceAllocation
    {
        private bool _disposed;
        public override long Id => id;
        public override string Tag => tag;
        public override long RequestedBytes => requested;
        public override long Size => segment.Size;
        public override DeviceSegment Segment => segment;
        public override long Offset => 0;
        public override bool IsDisposed => _disposed;

        public override void Dispose()
        {
            ThrowIfDisposed();
            _disposed = true;
            segment.Buffer.Dispose();
        }
    }
}
