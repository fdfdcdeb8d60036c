using ZImage.Runtime.Memory;

namespace ZImage.Pipeline.Tests.Infrastructure;

/// <summary>A device backend decorator that refuses every segment allocation while <see cref="Armed"/> (a device that is out of memory).</summary>
public sealed class FailingBackend(IDeviceMemoryBackend inner) : IDeviceMemoryBackend
{
    public volatile bool Armed;
    public int Refused;
    /// <summary>Runs before every segment allocation (e.g. to cancel a token in the middle of a model load).</summary>
    public Action? BeforeAllocate;
    public string Name => inner.Name;
    public bool HasBackingStore => inner.HasBackingStore;
    public DeviceMemoryInfo GetMemoryInfo() => inner.GetMemoryInfo();

    public bool TryAllocateSegment(long bytes, out DeviceSegment? segment)
    {
        BeforeAllocate?.Invoke();
        if (Armed)
        {
            Interlocked.Increment(ref Refused);
            segment = null;
            return false;
        }
        return inner.TryAllocateSegment(bytes, out segment);
    }

    public void FreeSegment(DeviceSegment segment) => inner.FreeSegment(segment);
    public void Synchronize() => inner.Synchronize();
    public void Dispose() => inner.Dispose();
}
