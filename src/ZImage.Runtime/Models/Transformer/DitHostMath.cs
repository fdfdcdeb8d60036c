namespace ZImage.Runtime.Models.Transformer;

/// <summary>
/// The small host-side tables of a DiT forward, computed with the reference's exact precision choices: the
/// timestep sinusoid in float32 (as torch does; float64 moves outputs by ~2e-5) and the 3-axis RoPE tables with
/// float64 frequencies, the angle rounded to float32, then float32 cos/sin (torch.polar on complex64).
/// </summary>
internal static class DitHostMath
{
    /// <summary>
    /// <c>[cos(t·f_0..f_{n/2-1}), sin(t·f_0..)]</c> with f_k = exp(−ln(10000)·k/(n/2)), every step in float32.
    /// <paramref name="t"/> is the already-scaled model time (t_model·t_scale).
    /// </summary>
    public static float[] TimestepSinusoid(float t, int dim)
    {
        int half = dim / 2;
        var e = new float[dim];
        // torch: exp(-math.log(10000) * arange(half, float32) / half): the python scalar is applied in float32.
        float negLog = (float)-Math.Log(10000.0);
        for (int k = 0; k < half; k++)
        {
            float freq = MathF.Exp(negLog * k / half);
            float arg = t * freq;
            e[k] = MathF.Cos(arg);
            e[half + k] = MathF.Sin(arg);
        }
        return e;
    }

    /// <summary>
    /// Position ids per token of the unified sequence <c>[image (Nip), caption (Lp)]</c>: image token n = h·Wt + w at
    /// (Lp+1, h, w), image pad slots at (0,0,0), caption slot j (pad slots included) at (j+1, 0, 0).
    /// </summary>
    public static int[] PositionIds(int ht, int wt, int imagePadded, int captionPadded)
    {
        int ni = ht * wt;
        var ids = new int[(imagePadded + captionPadded) * 3];
        for (int n = 0; n < ni; n++)
        {
            ids[n * 3] = captionPadded + 1;
            ids[n * 3 + 1] = n / wt;
            ids[n * 3 + 2] = n % wt;
        }
        for (int j = 0; j < captionPadded; j++)
            ids[(imagePadded + j) * 3] = j + 1;
        return ids;
    }

    /// <summary>
    /// cos/sin tables <c>[S, Dh/2]</c> for the given position ids: pair k of axis a uses
    /// angle = float32(pos_a · 1/θ^(2k/d_a)) (float64 product), then float32 cos/sin.
    /// </summary>
    public static (float[] Cos, float[] Sin) RopeTables(int[] positionIds, int[] axesDims, int[] axesLens, double theta)
    {
        int s = positionIds.Length / 3;
        int halfDh = axesDims.Sum() / 2;
        var freqs = new double[axesDims.Length][];
        for (int a = 0; a < axesDims.Length; a++)
        {
            int d = axesDims[a];
            freqs[a] = new double[d / 2];
            for (int k = 0; k < d / 2; k++)
                freqs[a][k] = 1.0 / Math.Pow(theta, (double)(2 * k) / d);
        }
        var cos = new float[s * halfDh];
        var sin = new float[s * halfDh];
        for (int r = 0; r < s; r++)
        {
            int col = 0;
            for (int a = 0; a < axesDims.Length; a++)
            {
                int pos = positionIds[r * 3 + a];
                if (pos < 0 || pos >= axesLens[a])
                    throw new ArgumentOutOfRangeException(nameof(positionIds), pos, $"RoPE position {pos} on axis {a} must lie in 0..{axesLens[a] - 1} (axes_lens); the image or caption is too large.");
                foreach (double f in freqs[a])
                {
                    float angle = (float)(pos * f);
                    cos[r * halfDh + col] = MathF.Cos(angle);
                    sin[r * halfDh + col] = MathF.Sin(angle);
                    col++;
                }
            }
        }
        return (cos, sin);
    }
}
