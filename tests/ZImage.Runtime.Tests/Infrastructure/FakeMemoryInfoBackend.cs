using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Infrastructure;

/// <summary>A backend that only reports memory info (settable), for budget detection tests; it hands out no segments.</summary>
internal sealed class FakeMemoryInfoBackend(long totalBytes, long freeBytes) : IDeviceMemoryBackend
{
    public string Name => "fake-info";
    public bool HasBackingStore => false;
    public DeviceMemoryInfo Info { get; set; } = new(totalBytes, freeBytes);
    public int InfoCalls { get; private set; }

    public DeviceMemoryInfo GetMemoryInfo()
    {
        InfoCalls++;
        return Info;
    }

    public bool TryAllocateSegment(long bytes, out DeviceSegment? segment)
    {
        segment = null;
        return false;
    }

    public void FreeSegment(DeviceSegment segment) => throw new InvalidOperationException("The fake backend hands out no segments.");
    public void Synchronize() { }
    public void Dispose() { }
}
