using ZImage.Runtime.Pipeline;

namespace ZImage.Pipeline.Tests;

public class SeededNoiseTests
{
    [Fact]
    public void SameSeedGivesTheSameNoise() => Assert.Equal(SeededNoise.Create(42, 1001), SeededNoise.Create(42, 1001));

    [Fact]
    public void DifferentSeedsDiffer() => Assert.NotEqual(SeededNoise.Create(42, 64), SeededNoise.Create(43, 64));

    [Fact]
    public void NoiseIsStandardNormal()
    {
        var x = SeededNoise.Create(-5, 200_000);
        double mean = x.Average(v => (double)v), var = x.Average(v => (v - mean) * (v - mean));
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(var, 0.98, 1.02);
        Assert.All(x, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void FirstValuesArePinned()
    {
        // The generator is part of the output contract (seeds reproduce across versions and backends); these values
        // come from an independent Python transcription of SplitMix64 + xoshiro256** + Box-Muller.
        var x = SeededNoise.Create(0, 4);
        Assert.Equal([-0.018964990973472595f, -1.355930209159851f, -0.4037210941314697f, 0.2333509773015976f], x);
        Assert.Equal(x[..3], SeededNoise.Create(0, 3));
    }
}
