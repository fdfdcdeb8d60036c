using ZImage.Runtime.Compute;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>Float64 host references of the VAE and text-encoder ops.</summary>
internal sealed partial class HostReferenceOps
{
    public void Conv2d(Tensor x, Tensor w, Tensor? bias, Tensor y) => Conv(x, w, bias, y, 1);

    public void Upsample2xConv2d(Tensor x, Tensor w, Tensor? bias, Tensor y) => Conv(x, w, bias, y, 2);

    public void Transpose2d(Tensor x, Tensor y)
    {
        int rows = x.Shape[0], cols = (int)(x.ElementCount / rows);
        float[] xs = Get(x), ys = new float[xs.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                ys[c * rows + r] = xs[r * cols + c];
        Set(y, ys);
    }

    public void RopeRotateHalf(Tensor q, Tensor k, Tensor cos, Tensor sin)
    {
        RotateHalf(q, cos, sin);
        RotateHalf(k, cos, sin);
    }

    private static void RotateHalf(Tensor x, Tensor cos, Tensor sin)
    {
        int s = x.Shape[0], h = x.Shape[1], dh = x.Shape[2], half = dh / 2;
        float[] xs = Get(x), c = Get(cos), sn = Get(sin), ys = new float[xs.Length];
        for (int t = 0; t < s; t++)
            for (int hh = 0; hh < h; hh++)
                for (int d = 0; d < dh; d++)
                {
                    int b = (t * h + hh) * dh;
                    double rotated = d < half ? -xs[b + d + half] : xs[b + d - half];
                    ys[b + d] = (float)(xs[b + d] * (double)c[t * dh + d] + rotated * sn[t * dh + d]);
                }
        Set(x, ys);
    }

    /// <summary>Stride-1 "same" convolution of the (optionally nearest-upsampled by <paramref name="f"/>) input.</summary>
    private static void Conv(Tensor x, Tensor w, Tensor? bias, Tensor y, int f)
    {
        int cin = x.Shape[0], h = x.Shape[1], wd = x.Shape[2], cout = w.Shape[0], k = w.Shape[2], p = k / 2;
        int oh = f * h, ow = f * wd;
        float[] xs = Get(x), ws = Get(w), bs = bias is null ? new float[cout] : Get(bias), ys = new float[cout * oh * ow];
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    double acc = bs[co];
                    for (int ci = 0; ci < cin; ci++)
                        for (int dy = 0; dy < k; dy++)
                            for (int dx = 0; dx < k; dx++)
                            {
                                int iy = oy + dy - p, ix = ox + dx - p;
                                if (iy < 0 || iy >= oh || ix < 0 || ix >= ow) continue;
                                acc += (double)ws[((co * cin + ci) * k + dy) * k + dx] * xs[(ci * h + iy / f) * wd + ix / f];
                            }
                    ys[(co * oh + oy) * ow + ox] = (float)acc;
                }
        Set(y, ys);
    }
}
