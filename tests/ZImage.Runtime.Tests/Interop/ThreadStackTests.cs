using ZImage.Runtime.Interop;

namespace ZImage.Runtime.Tests.Interop;

/// <summary><see cref="ThreadStack"/>: the OS's stack range of a thread holds that thread's locals and no other live thread's.</summary>
public unsafe class ThreadStackTests
{
    [Fact]
    public void BoundsAreResolvedOnTheDesktopPlatforms()
    {
        Assert.Equal(OperatingSystem.IsLinux() || OperatingSystem.IsWindows() || OperatingSystem.IsMacOS(), ThreadStack.IsSupported);
    }

    [Fact]
    public void TheRangeHoldsTheCallersLocalsOnTheTestThreadAndOnANewThread()
    {
        Assert.True(ThreadStack.TryGetCurrent(out nuint low, out nuint high));
        AssertHoldsLocal(low, high);
        Assert.True(DeepFrameStaysInside(low, high, 200));

        bool ok = false;
        var t = new Thread(() =>
        {
            ok = ThreadStack.TryGetCurrent(out nuint l, out nuint h) && h - l >= 64 * 1024;
            AssertHoldsLocal(l, h);
        }, maxStackSize: 256 * 1024);
        t.Start();
        t.Join();
        Assert.True(ok);
    }

    [Fact]
    public void LiveThreadsHaveDisjointRanges()
    {
        const int threads = 6;
        var ranges = new (nuint Low, nuint High)[threads];
        using var barrier = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            ThreadStack.TryGetCurrent(out ranges[i].Low, out ranges[i].High);
            barrier.SignalAndWait(); // all alive at once, so no stack memory is reused between them
        }, maxStackSize: 128 * 1024)).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        var sorted = ranges.OrderBy(r => r.Low).ToArray();
        for (int i = 0; i < threads; i++)
        {
            Assert.True(sorted[i].High > sorted[i].Low, $"empty range for thread {i}");
            if (i > 0)
                Assert.True(sorted[i].Low >= sorted[i - 1].High, "two live threads' stacks overlap");
        }
    }

    private static void AssertHoldsLocal(nuint low, nuint high)
    {
        byte local = 0;
        nuint here = (nuint)(&local);
        Assert.InRange(here, low, high - 1);
    }

    private static bool DeepFrameStaysInside(nuint low, nuint high, int depth)
    {
        Span<byte> pad = stackalloc byte[256];
        pad[0] = (byte)depth;
        fixed (byte* p = pad)
        {
            if ((nuint)p - low >= high - low)
                return false;
        }
        return depth == 0 || DeepFrameStaysInside(low, high, depth - 1);
    }
}
