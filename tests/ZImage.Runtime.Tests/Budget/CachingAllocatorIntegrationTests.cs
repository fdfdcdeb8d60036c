using ZImage.Runtime.Budget;
using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Budget;

/// <summary>The decorator over the real caching allocator on a simulated 24 GiB device.</summary>
public class CachingAllocatorIntegrationTests
{
    private const long MiB = ByteSize.MiB;

    [Fact]
    public void ChargesTheCachingAllocatorsRoundedSizeAndRefusesWithoutTouchingTheDevice()
    {
        using var device = new SimulatedDeviceBackend(24 * ByteSize.GiB);
        var caching = new CachingAllocator(device);
        var guard = BudgetGuard.Start(new BudgetOptions { InferenceBytes = 4 * MiB, BufferBytes = 0 }, device);
        var allocator = new BudgetedAllocator(caching, guard);

        Assert.Equal(caching.RoundSize(1000), allocator.ChargeFor(1000));
        using var a = allocator.Allocate(1000, AllocationTags.Transformer);
        Assert.Equal(caching.RoundSize(1000), guard.InferenceInUseBytes);
        long freeBefore = device.GetMemoryInfo().FreeBytes;

        Assert.Throws<BudgetExceededException>(() => allocator.Allocate(4 * MiB, AllocationTags.Vae));

        Assert.Equal(freeBefore, device.GetMemoryInfo().FreeBytes);
        Assert.Equal(caching.RoundSize(1000), guard.InferenceInUseBytes);
    }
}
