using ZImage.Runtime.Memory;
using static ZImage.Runtime.Tests.Memory.AllocatorInvariants;

namespace ZImage.Runtime.Tests.Memory;

/// <summary>
/// <see cref="BiasedLock"/>: mutual exclusion while the bias is granted, revoked and granted again, reentry, and release
/// on exceptions. The critical sections below do a non-atomic read-modify-write with a pause in the middle, so any
/// overlap of two threads loses an increment or trips the occupancy counter.
/// </summary>
public class BiasedLockTests
{
    [Fact]
    public void MutualExclusionHoldsWhileTheBiasMovesBetweenThreads()
    {
        var gate = new BiasedLock(biasAfter: 4);
        long counter = 0;
        int inside = 0, overlaps = 0;
        const int threads = 4, perThread = 20_000;
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var rng = new Random(t);
            int done = 0;
            while (done < perThread)
            {
                // Bursts long enough to earn the bias, then a pause that lets another thread in to revoke it.
                int burst = Math.Min(perThread - done, rng.Next(1, 64));
                for (int i = 0; i < burst; i++)
                {
                    using (gate.EnterScope())
                    {
                        if (Interlocked.Increment(ref inside) != 1)
                            Interlocked.Increment(ref overlaps);
                        long v = counter;
                        Thread.SpinWait(4);
                        counter = v + 1;
                        Interlocked.Decrement(ref inside);
                    }
                }
                done += burst;
                if (rng.Next(4) == 0)
                    Thread.Yield();
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        Assert.Equal(0, overlaps);
        Assert.Equal((long)threads * perThread, counter);
        Assert.True(gate.BiasGrants > 1, $"the bias was granted {gate.BiasGrants} times");
        Assert.True(gate.Revocations > 0, "no thread ever revoked a bias");
    }

    [Fact]
    public void AnotherThreadWaitsUntilTheBiasedOwnerLeaves()
    {
        var gate = new BiasedLock(biasAfter: 1);
        using (gate.EnterScope()) { } // grants the bias to this thread
        Assert.True(gate.IsBiasedToCurrentThread);

        var entered = new ManualResetEventSlim();
        Thread other;
        using (gate.EnterScope())
        {
            other = new Thread(() =>
            {
                using (gate.EnterScope())
                    entered.Set();
            });
            other.Start();
            Assert.False(entered.Wait(200), "the other thread entered while the owner was inside");
        }
        Assert.True(entered.Wait(TimeSpan.FromSeconds(10)), "the other thread never entered after the owner left");
        other.Join();
        Assert.Equal(1, gate.Revocations);
        Assert.False(gate.IsBiasedToCurrentThread);
    }

    [Fact]
    public void ReentryWorksOnTheBiasedAndTheInnerLockPaths()
    {
        var gate = new BiasedLock(biasAfter: 2);
        // Inner-lock path first (not biased yet), reentered: one acquisition, no bias yet.
        using (gate.EnterScope())
        using (gate.EnterScope())
        {
        }
        Assert.False(gate.IsBiasedToCurrentThread);
        using (gate.EnterScope()) { } // the second acquisition in a row grants it
        Assert.True(gate.IsBiasedToCurrentThread);
        // Biased path, reentered three deep; then another thread must still get in afterwards.
        using (gate.EnterScope())
        using (gate.EnterScope())
        using (gate.EnterScope())
        {
        }
        Assert.True(EntersFromAnotherThread(gate), "another thread could not enter afterwards");
    }

    [Fact]
    public void AnExceptionInsideTheScopeLeavesTheLock()
    {
        var gate = new BiasedLock(biasAfter: 1);
        for (int i = 0; i < 3; i++) // inner-lock path, then biased path twice
        {
            Assert.Throws<InvalidOperationException>((Action)(() =>
            {
                using (gate.EnterScope())
                    throw new InvalidOperationException("inside");
            }));
        }
        Assert.True(EntersFromAnotherThread(gate), "another thread could not enter afterwards");
    }

    private static bool EntersFromAnotherThread(BiasedLock gate)
    {
        bool entered = false;
        var t = new Thread(() =>
        {
            using (gate.EnterScope())
                entered = true;
        });
        t.Start();
        return t.Join(TimeSpan.FromSeconds(10)) && entered;
    }

    [Fact]
    public void ZeroOrNegativeBiasThresholdIsRefused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new BiasedLock(0));
        Assert.Equal("biasAfter", e.ParamName);
    }

    [Fact]
    public void AllocatorStaysConsistentWhenItsOwnerThreadChanges()
    {
        var (backend, a) = Create(ByteSize.GiB);
        using var _a = a;
        // One thread drives the allocator long enough to own its lock, then four threads share it, then one again.
        void Drive(int seed, int ops) => AllocAndFreeAtRandom(a, seed, ops, "d" + seed);
        var first = new Thread(() => Drive(0, 3 * BiasedLock.DefaultBiasAfter));
        first.Start();
        first.Join();
        long grantsAfterFirst = a.Gate.BiasGrants;
        Parallel.For(1, 5, worker => Drive(worker, 3000));
        Drive(9, 3 * BiasedLock.DefaultBiasAfter);

        Assert.True(grantsAfterFirst >= 1, "the first thread never owned the lock");
        Assert.True(a.Gate.Revocations >= 1, "no other thread revoked the first owner");
        Assert.True(a.Gate.IsBiasedToCurrentThread, "the last thread did not get the lock's bias");
        Check(a, backend, []);
        Assert.Equal(0, a.AllocatedBytes);
        a.EmptyCache();
        Assert.Equal(0, backend.ReservedBytes);
    }
}
