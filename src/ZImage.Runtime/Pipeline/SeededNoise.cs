namespace ZImage.Runtime.Pipeline;

/// <summary>
/// Host-side Gaussian noise, so that a seed gives the same initial latents on every backend (as ComfyUI generates
/// noise on the CPU). Algorithm, fixed as part of the output contract: the 256-bit state of xoshiro256** is filled
/// from SplitMix64(seed); each pair of outputs u1, u2 becomes uniform doubles in (0,1] and [0,1) from their top 53 bits;
/// Box-Muller gives <c>sqrt(−2 ln u1)·cos(2π u2)</c> and <c>sqrt(−2 ln u1)·sin(2π u2)</c>, computed in double and
/// rounded to float32, in that order.
/// </summary>
public static class SeededNoise
{
    /// <summary>Fills <paramref name="destination"/> with standard-normal floats for <paramref name="seed"/>.</summary>
    public static void Fill(long seed, Span<float> destination)
    {
        ulong sm = unchecked((ulong)seed);
        ulong s0 = SplitMix(ref sm), s1 = SplitMix(ref sm), s2 = SplitMix(ref sm), s3 = SplitMix(ref sm);
        for (int i = 0; i < destination.Length; i += 2)
        {
            // 1 - [0,1) keeps u1 away from 0 so that the logarithm is finite.
            double u1 = 1.0 - (Next(ref s0, ref s1, ref s2, ref s3) >> 11) * (1.0 / (1UL << 53));
            double u2 = (Next(ref s0, ref s1, ref s2, ref s3) >> 11) * (1.0 / (1UL << 53));
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            double a = 2.0 * Math.PI * u2;
            destination[i] = (float)(r * Math.Cos(a));
            if (i + 1 < destination.Length) destination[i + 1] = (float)(r * Math.Sin(a));
        }
    }

    /// <summary>Returns <paramref name="count"/> standard-normal floats for <paramref name="seed"/>.</summary>
    public static float[] Create(long seed, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var a = new float[count];
        Fill(seed, a);
        return a;
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Next(ref ulong s0, ref ulong s1, ref ulong s2, ref ulong s3)
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }
}
