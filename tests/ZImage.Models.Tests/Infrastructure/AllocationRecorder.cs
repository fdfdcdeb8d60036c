using ZImage.Runtime.Memory;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>One allocator event: <c>alloc</c> or <c>free</c>, the requested bytes and the tag.</summary>
/// <param name="Op">"alloc" or "free".</param>
/// <param name="Bytes">The bytes the caller asked for.</param>
/// <param name="Tag">The allocation tag.</param>
/// <param name="Index">Order of the matching alloc among all allocs, so frees are paired by position, not by allocator id.</param>
internal readonly record struct AllocationEvent(string Op, long Bytes, string Tag, int Index)
{
    public override string ToString() => $"{Op} #{Index} {Bytes} B {Tag}";
}

/// <summary>
/// Decorates an <see cref="IDeviceAllocator"/> and records every allocation and free, so a planning run and a real
/// run can be compared event by event. Blocks handed out are wrappers that delegate to the inner block.
/// </summary>
internal sealed class AllocationRecorder(IDeviceAllocator inner) : IDeviceAllocator
{
    private readonly List<AllocationEvent> _events = [];
    private readonly object _gate = new();
    private int _allocs;

    public IDeviceMemoryBackend Backend => inner.Backend;

    /// <summary>A snapshot of the events so far.</summary>
    public IReadOnlyList<AllocationEvent> Events
    {
        get
        {
            lock (_gate) return _events.ToArray();
        }
    }

    /// <summary>Blocks allocated through the recorder and not yet freed.</summary>
    public int LiveCount
    {
        get
        {
            lock (_gate) return _events.Count(e => e.Op == "alloc") - _events.Count(e => e.Op == "free");
        }
    }

    /// <summary>Forgets the events recorded so far (e.g. the weight loads before the forward under test).</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _events.Clear();
            _allocs = 0;
        }
    }

    public DeviceAllocation Allocate(long bytes, string tag)
    {
        var block = inner.Allocate(bytes, tag);
        int index;
        lock (_gate)
        {
            index = _allocs++;
            _events.Add(new AllocationEvent("alloc", bytes, tag, index));
        }
        return new Recorded(block, this, index);
    }

    public DeviceBuffer<T> Allocate<T>(long length, string tag) where T : unmanaged =>
        new(Allocate(length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), tag), length);

    private void OnFree(Recorded block)
    {
        lock (_gate) _events.Add(new AllocationEvent("free", block.RequestedBytes, block.Tag, block.Index));
    }

    private sealed class Recorded(DeviceAllocation block, AllocationRecorder owner, int index) : DeviceAllocation
    {
        public int Index => index;
        public override long Id => block.Id;
        public override string Tag => block.Tag;
        public override long RequestedBytes => block.RequestedBytes;
        public override long Size => block.Size;
        public override DeviceSegment Segment => block.Segment;
        public override long Offset => block.Offset;
        public override bool IsDisposed => block.IsDisposed;

        public override void Dispose()
        {
            // The inner block throws on a second dispose; only a successful free is recorded.
            block.Dispose();
            owner.OnFree(this);
        }
    }
}
