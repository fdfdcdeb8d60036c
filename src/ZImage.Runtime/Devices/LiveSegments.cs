using ILGPU;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Devices;

/// <summary>
/// A segment over real device memory that its backend releases exactly once; views are refused after release and
/// outside the segment.
/// </summary>
internal abstract class ReleasableSegment(object owner, long address, long size, string returnedTo) : DeviceSegment(address, size)
{
    private int _released;

    /// <summary>The backend that handed the segment out.</summary>
    public object Owner { get; } = owner;

    /// <inheritdoc />
    public sealed override ArrayView<byte> GetByteView(long offset, long length)
    {
        if (Volatile.Read(ref _released) != 0)
            throw new ObjectDisposedException($"Segment@0x{Address:X}", $"The segment was returned to the {returnedTo}.");
        if (offset < 0 || offset > Size)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"The offset must be within 0..{Size}.");
        if (length < 0 || length > Size - offset)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"The length must be within 0..{Size - offset} at offset {offset}.");
        return WholeView.SubView(offset, length);
    }

    /// <summary>Frees the memory the first time it is called; later calls do nothing.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
            Free();
    }

    /// <summary>A byte view over the whole segment.</summary>
    protected abstract ArrayView<byte> WholeView { get; }

    /// <summary>Frees the memory (called once).</summary>
    protected abstract void Free();
}

/// <summary>
/// The live-segment bookkeeping of a memory backend: which segments it handed out, whether it was disposed, and the
/// ownership and double-free checks on <c>FreeSegment</c>. Thread-safe.
/// </summary>
internal sealed class LiveSegments<TSegment>
    where TSegment : ReleasableSegment
{
    private readonly object _gate = new();
    private readonly HashSet<TSegment> _live = [];
    private bool _closed;

    /// <summary>Live segments.</summary>
    public int Count
    {
        get { lock (_gate) return _live.Count; }
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> naming <paramref name="backendName"/> once <see cref="Close"/> ran.</summary>
    public void ThrowIfClosed(string backendName)
    {
        if (Volatile.Read(ref _closed))
            throw new ObjectDisposedException(backendName);
    }

    /// <summary>Records <paramref name="segment"/> as live; <see langword="false"/> (nothing recorded) once closed.</summary>
    public bool TryAdd(TSegment segment)
    {
        lock (_gate)
        {
            if (_closed)
                return false;
            _live.Add(segment);
            return true;
        }
    }

    /// <summary>Records <paramref name="segment"/> as live even after <see cref="Close"/>.</summary>
    public void Add(TSegment segment)
    {
        lock (_gate)
            _live.Add(segment);
    }

    /// <summary>Forgets <paramref name="segment"/>, which must be a live segment of <paramref name="owner"/>.</summary>
    /// <exception cref="ArgumentException">The segment is not from <paramref name="owner"/> or was already freed.</exception>
    public TSegment Remove(DeviceSegment segment, object owner, string backendName)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (segment is not TSegment own || !ReferenceEquals(own.Owner, owner))
            throw new ArgumentException($"Segment at 0x{segment.Address:X} ({segment.Size} B) does not belong to backend '{backendName}'.", nameof(segment));
        lock (_gate)
        {
            if (!_live.Remove(own))
                throw new ArgumentException($"Segment at 0x{segment.Address:X} ({segment.Size} B) was already freed.", nameof(segment));
        }

        return own;
    }

    /// <summary>Closes the set and returns the segments that were live; <see langword="null"/> when it was already closed.</summary>
    public TSegment[]? Close()
    {
        lock (_gate)
        {
            if (_closed)
                return null;
            _closed = true;
            TSegment[] live = [.. _live];
            _live.Clear();
            return live;
        }
    }
}
