namespace ZImage.Kernels.Tests.Infrastructure;

/// <summary>Float64 references for attention and RoPE.</summary>
public static class AttnReference
{
    /// <summary>
    /// o = softmax(q·kᵀ·scale [+ causal])·v per head with GQA, plus each output's magnitude Σⱼ pⱼ·|v[j,d]|.
    /// </summary>
    public static (double[] O, double[] Magnitude) Attention(float[] q, float[] k, float[] v, int sq, int sk, int hq, int hkv, int dh, double scale, bool causal)
    {
        var o = new double[sq * hq * dh];
        var mag = new double[o.Length];
        var scores = new double[sk];
        int group = hq / hkv;
        for (int i = 0; i < sq; i++)
        for (int h = 0; h < hq; h++)
        {
            int kh = h / group, keys = causal ? i + 1 : sk;
            double max = double.NegativeInfinity;
            for (int j = 0; j < keys; j++)
            {
                double dot = 0;
                for (int d = 0; d < dh; d++) dot += (double)q[(i * hq + h) * dh + d] * k[(j * hkv + kh) * dh + d];
                scores[j] = dot * scale;
                max = Math.Max(max, scores[j]);
            }
            double sum = 0;
            for (int j = 0; j < keys; j++) sum += scores[j] = Math.Exp(scores[j] - max);
            for (int d = 0; d < dh; d++)
            {
                double acc = 0, m = 0;
                for (int j = 0; j < keys; j++)
                {
                    double val = v[(j * hkv + kh) * dh + d];
                    acc += scores[j] / sum * val;
                    m += scores[j] / sum * Math.Abs(val);
                }
                o[(i * hq + h) * dh + d] = acc;
                mag[(i * hq + h) * dh + d] = m;
            }
        }
        return (o, mag);
    }

    /// <summary>Interleaved-pair RoPE of x[S,H,Dh] with tables [S,Dh/2]; returns the result and per-element magnitudes.</summary>
    public static (double[] X, double[] Magnitude) RopeInterleaved(float[] x, float[] cos, float[] sin, int s, int h, int dh)
    {
        var y = new double[x.Length];
        var mag = new double[x.Length];
        int half = dh / 2;
        for (int t = 0; t < s; t++)
        for (int hh = 0; hh < h; hh++)
        for (int j = 0; j < half; j++)
        {
            int b = (t * h + hh) * dh + 2 * j;
            double x0 = x[b], x1 = x[b + 1], c = cos[t * half + j], sn = sin[t * half + j];
            y[b] = x0 * c - x1 * sn;
            y[b + 1] = x0 * sn + x1 * c;
            mag[b] = mag[b + 1] = Math.Abs(x0) + Math.Abs(x1);
        }
        return (y, mag);
    }

    /// <summary>Rotate-half RoPE of x[S,H,Dh] with tables [S,Dh]: x·cos + concat(−x[Dh/2:], x[:Dh/2])·sin.</summary>
    public static (double[] X, double[] Magnitude) RopeRotateHalf(float[] x, float[] cos, float[] sin, int s, int h, int dh)
    {
        var y = new double[x.Length];
        var mag = new double[x.Length];
        int half = dh / 2;
        for (int t = 0; t < s; t++)
        for (int hh = 0; hh < h; hh++)
        for (int d = 0; d < dh; d++)
        {
            int b = (t * h + hh) * dh;
            double rot = d < half ? -(double)x[b + d + half] : x[b + d - half];
            y[b + d] = x[b + d] * (double)cos[t * dh + d] + rot * sin[t * dh + d];
            mag[b + d] = Math.Abs(x[b + d]) + Math.Abs(rot);
        }
        return (y, mag);
    }
}
