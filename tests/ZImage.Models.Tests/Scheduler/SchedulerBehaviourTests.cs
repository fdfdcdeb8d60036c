using CsCheck;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Scheduling;

namespace ZImage.Models.Tests.Scheduler;

/// <summary>Range checks, dynamic shifting and float32 arithmetic of the scheduler.</summary>
public class SchedulerBehaviourTests
{
    private static readonly FlowMatchEulerScheduler Turbo = new(ZImageConfig.Turbo.Scheduler);

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(1001)]
    public void StepCountOutsideTheRangeIsRejected(int steps)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Turbo.Sigmas(steps));
        Assert.Equal(steps, ex.ActualValue);
        Assert.Contains("[1, 1000]", ex.Message);
    }

    [Fact]
    public void SigmasDecreaseFromOneToZero() =>
        Gen.Int[1, 1000].Select(Gen.Enum<SigmaSchedule>()).Sample((n, schedule) =>
        {
            float[] s = Turbo.Sigmas(n, schedule);
            if (s.Length != n + 1 || s[0] != 1f || s[n] != 0f) return false;
            for (int i = 1; i <= n; i++)
                if (s[i] > s[i - 1]) return false;
            return true;
        }, iter: 200);

    [Fact]
    public void EightStepDefaultMatchesTheDocumentedTable()
    {
        FlowMatchSchedule s = Turbo.Schedule(8);
        // Architecture spec §6: 3s/(1+2s) for s = 1, .875, …, .125, then 0.
        double[] expected = [1.0, 0.95454544, 0.9, 0.8333333, 0.75, 0.64285713, 0.5, 0.3, 0.0];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], s.Sigmas[i], 6);
        Assert.Equal(0f, s.ModelTime(0));
        Assert.Equal(0.7f, s.ModelTime(7), 6);
    }

    [Fact]
    public void LegacyNineStepsRepeatTheDefaultEightPlusAZeroStep()
    {
        float[] legacy = Turbo.Sigmas(9, SigmaSchedule.LegacySigmaMinZero);
        float[] current = Turbo.Sigmas(8);
        for (int i = 0; i < 8; i++) Assert.Equal(current[i], legacy[i], 6);
        Assert.Equal(0f, legacy[8]);
        Assert.Equal(0f, legacy[9]);
    }

    [Fact]
    public void DynamicShiftingNeedsMuAndUsesTheExponentialTimeShift()
    {
        var dynamic = new FlowMatchEulerScheduler(ZImageConfig.Turbo.Scheduler with { UseDynamicShifting = true });
        Assert.Throws<ArgumentException>(() => dynamic.Sigmas(8));
        double mu = dynamic.CalculateShift(4096);
        Assert.Equal(1.15, mu, 12);
        Assert.Equal(0.5, dynamic.CalculateShift(256), 12);
        float[] s = dynamic.Sigmas(4, mu: mu);
        // s = 0.5 (third of linspace(1, 0.25, 4)) => e^mu / (e^mu + 1).
        Assert.Equal(Math.Exp(mu) / (Math.Exp(mu) + 1), s[2], 6);
        Assert.Throws<ArgumentOutOfRangeException>(() => dynamic.CalculateShift(0));
    }

    [Fact]
    public void UnsupportedConfigIsRejected() =>
        Assert.Throws<CheckpointConfigurationException>(() => new FlowMatchEulerScheduler(ZImageConfig.Turbo.Scheduler with { UseKarrasSigmas = true }));

    [Fact]
    public void EulerStepAddsTheNegatedOutputTimesDt()
    {
        float[] latents = [1f, -2f, 0.5f];
        FlowMatchEulerScheduler.EulerStep(latents, [0.5f, 1f, -4f], 0.75f, 0.5f);
        Assert.Equal([1.125f, -1.75f, -0.5f], latents);
        Assert.Throws<ArgumentException>(() => FlowMatchEulerScheduler.EulerStep(latents, [1f], 1f, 0f));
    }

    [Fact]
    public void ModelTimeIsComputedFromTheFloat32Timestep()
    {
        // 0.95454544f·1000 rounds to 954.5454 in float32; (1000 − 954.5454)/1000 differs from 1 − σ in the last bits.
        float sigma = 0.95454544f;
        float viaTimestep = FlowMatchEulerScheduler.ModelTime(sigma);
        Assert.Equal((1000f - sigma * 1000f) / 1000f, viaTimestep);
        Assert.Equal(1.0 - sigma, viaTimestep, 5);
    }

    [Fact]
    public void LinspaceF64EndsExactlyAtStop()
    {
        double[] y = FlowMatchEulerScheduler.LinspaceF64(1000, 0, 7);
        Assert.Equal(1000, y[0]);
        Assert.Equal(0, y[^1]);
        Assert.Equal([5f], FlowMatchEulerScheduler.LinspaceF32(5f, 1f, 1));
    }
}
