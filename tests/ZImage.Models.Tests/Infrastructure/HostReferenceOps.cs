using ILGPU;
using ILGPU.Runtime;
using ZImage.Runtime.Compute;

namespace ZImage.Models.Tests.Infrastructure;

/// <summary>
/// A plain host implementation of the compute ops (float64 accumulation), reading and writing the tensors' device
/// memory through copies. Used as the independent reference the kernel-backed ops are checked against.
/// </summary>
internal sealed partial class HostReferenceOps
{
    public bool IsPlanning => false;

    public static float[] Get(Tensor t)
    {
        switch (t.DType)
        {
            case TensorDType.F32:
                {
                    var a = new float[t.ElementCount];
                    t.F32.CopyToCPU(a);
                    return a;
                }
            case TensorDType.BF16:
                {
                    var a = new ushort[t.ElementCount];
                    t.BF16.CopyToCPU(a);
                    return a.Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray();
                }
            case TensorDType.F16:
                {
                    var a = new ILGPU.Half[t.ElementCount];
                    t.F16.CopyToCPU(a);
                    return a.Select(h => (float)h).ToArray();
                }
            default:
                throw new NotSupportedException(t.DType.ToString());
        }
    }

    public static void Set(Tensor t, float[] values) => t.F32.CopyFromCPU(values);

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        int k = x.Dim(-1), n = w.Shape[0];
        int m = (int)(x.ElementCount / k);
        float[] xs = Get(x), ws = Get(w), bs = bias is null ? new float[n] : Get(bias);
        var ys = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = bs[j];
                for (int kk = 0; kk < k; kk++) acc += (double)xs[i * k + kk] * ws[j * k + kk];
                ys[i * n + j] = (float)acc;
            }
        Set(y, ys);
    }

    public void RmsNorm(Tensor x, Tensor? weight, float eps, Tensor y)
    {
        int d = x.Dim(-1);
        float[] xs = Get(x), ws = weight is null ? Enumerable.Repeat(1f, d).ToArray() : Get(weight);
        var ys = new float[xs.Length];
        for (int r = 0; r < xs.Length / d; r++)
        {
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double)xs[r * d + i] * xs[r * d + i];
            double inv = 1.0 / Math.Sqrt(ss / d + eps);
            for (int i = 0; i < d; i++) ys[r * d + i] = (float)(xs[r * d + i] * inv * ws[i]);
        }
        Set(y, ys);
    }

    public void LayerNorm(Tensor x, float eps, Tensor y)
    {
        int d = x.Dim(-1);
        float[] xs = Get(x);
        var ys = new float[xs.Length];
        for (int r = 0; r < xs.Length / d; r++)
        {
            double mean = 0;
            for (int i = 0; i < d; i++) mean += xs[r * d + i];
            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++) var += (xs[r * d + i] - mean) * (xs[r * d + i] - mean);
            double inv = 1.0 / Math.Sqrt(var / d + eps);
            for (int i = 0; i < d; i++) ys[r * d + i] = (float)((xs[r * d + i] - mean) * inv);
        }
        Set(y, ys);
    }

    public void GroupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, bool silu, Tensor y)
    {
        int c = x.Shape[0], hw = x.Shape[1] * x.Shape[2], cpg = c / groups;
        float[] xs = Get(x), g = Get(gamma), b = Get(beta);
        var ys = new float[xs.Length];
        for (int gi = 0; gi < groups; gi++)
        {
            int start = gi * cpg * hw, len = cpg * hw;
            double mean = 0;
            for (int i = 0; i < len; i++) mean += xs[start + i];
            mean /= len;
            double var = 0;
            for (int i = 0; i < len; i++) var += (xs[start + i] - mean) * (xs[start + i] - mean);
            double inv = 1.0 / Math.Sqrt(var / len + eps);
            for (int i = 0; i < len; i++)
            {
                int ch = (start + i) / hw;
                double v = (xs[start + i] - mean) * inv * g[ch] + b[ch];
                if (silu) v = v / (1 + Math.Exp(-v));
                ys[start + i] = (float)v;
            }
        }
        Set(y, ys);
    }

    public void Silu(Tensor x, Tensor y) => Set(y, Get(x).Select(v => (float)(v / (1 + Math.Exp(-(double)v)))).ToArray());

    public void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        float[] g = Get(gate), u = Get(up);
        Set(y, g.Select((v, i) => (float)(v / (1 + Math.Exp(-(double)v)) * u[i])).ToArray());
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        float[] x = Get(a), z = Get(b);
        Set(y, x.Select((v, i) => v + z[i]).ToArray());
    }

    public void Attention(Tensor q, Tensor k, Tensor v, float scale, bool causal, Tensor o)
    {
        int sq = q.Shape[0], hq = q.Shape[1], dh = q.Shape[2], sk = k.Shape[0], hkv = k.Shape[1];
        float[] qs = Get(q), ks = Get(k), vs = Get(v);
        var os = new float[qs.Length];
        var scores = new double[sk];
        for (int h = 0; h < hq; h++)
        {
            int hk = h / (hq / hkv);
            for (int i = 0; i < sq; i++)
            {
                double max = double.NegativeInfinity;
                int limit = causal ? Math.Min(sk, i + 1) : sk;
                for (int j = 0; j < limit; j++)
                {
                    double s = 0;
                    for (int d = 0; d < dh; d++) s += (double)qs[(i * hq + h) * dh + d] * ks[(j * hkv + hk) * dh + d];
                    scores[j] = s * scale;
                    max = Math.Max(max, scores[j]);
                }
                double sum = 0;
                for (int j = 0; j < limit; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                for (int d = 0; d < dh; d++)
                {
                    double acc = 0;
                    for (int j = 0; j < limit; j++) acc += scores[j] * vs[(j * hkv + hk) * dh + d];
                    os[(i * hq + h) * dh + d] = (float)(acc / sum);
                }
            }
        }
        Set(o, os);
    }

    public void Copy(Tensor src, Tensor dst) => Set(dst, Get(src));

    public void Upload(ReadOnlySpan<float> host, Tensor dst) => Set(dst, host.ToArray());

    public float[] Download(Tensor src) => Get(src);

    public void Synchronize()
    {
    }

    public void RopeInterleaved(Tensor x, Tensor cos, Tensor sin)
    {
        int s = x.Shape[0], h = x.Shape[1], dh = x.Shape[2];
        float[] xs = Get(x), c = Get(cos), sn = Get(sin);
        for (int t = 0; t < s; t++)
            for (int hh = 0; hh < h; hh++)
                for (int j = 0; j < dh / 2; j++)
                {
                    int i0 = (t * h + hh) * dh + 2 * j;
                    float x0 = xs[i0], x1 = xs[i0 + 1], cc = c[t * dh / 2 + j], ss = sn[t * dh / 2 + j];
                    xs[i0] = x0 * cc - x1 * ss;
                    xs[i0 + 1] = x0 * ss + x1 * cc;
                }
        Set(x, xs);
    }

    public void Modulate(Tensor x, Tensor scale, Tensor y)
    {
        float[] xs = Get(x), sc = Get(scale);
        int d = sc.Length;
        Set(y, xs.Select((v, i) => v * (1 + sc[i % d])).ToArray());
    }

    public void GatedResidual(Tensor residual, Tensor branch, Tensor? gate)
    {
        float[] r = Get(residual), b = Get(branch);
        float[]? g = gate is null ? null : Get(gate);
        int d = residual.Dim(-1);
        Set(residual, r.Select((v, i) => v + (g is null ? 1f : MathF.Tanh(g[i % d])) * b[i]).ToArray());
    }

    public void RmsNormModulate(Tensor x, Tensor? weight, Tensor scale, float eps, Tensor y)
    {
        RmsNorm(x, weight, eps, y);
        Modulate(y, scale, y);
    }

    public void RmsNormGatedResidual(Tensor branch, Tensor? weight, Tensor? gate, float eps, Tensor residual)
    {
        int d = branch.Dim(-1);
        float[] b = Get(branch), ws = weight is null ? Enumerable.Repeat(1f, d).ToArray() : Get(weight), r = Get(residual);
        float[]? g = gate is null ? null : Get(gate);
        for (int row = 0; row < b.Length / d; row++)
        {
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double)b[row * d + i] * b[row * d + i];
            double inv = 1.0 / Math.Sqrt(ss / d + eps);
            for (int i = 0; i < d; i++)
                r[row * d + i] += (g is null ? 1f : MathF.Tanh(g[i])) * (float)(b[row * d + i] * inv * ws[i]);
        }
        Set(residual, r);
    }

    public void LayerNormModulate(Tensor x, Tensor? scale, float eps, Tensor y)
    {
        LayerNorm(x, eps, y);
        if (scale is not null) Modulate(y, scale, y);
    }

    public void Tanh(Tensor x, Tensor y) => Set(y, Get(x).Select(MathF.Tanh).ToArray());

    public void CopyRows(Tensor src, int srcRow, Tensor dst, int dstRow, int rowCount)
    {
        float[] s = Get(src), d = Get(dst);
        int w = (int)(src.ElementCount / src.Shape[0]);
        Array.Copy(s, srcRow * w, d, dstRow * w, rowCount * w);
        Set(dst, d);
    }

    public void FillRows(Tensor row, Tensor dst, int startRow, int rowCount)
    {
        float[] r = Get(row), d = Get(dst);
        for (int i = 0; i < rowCount; i++) Array.Copy(r, 0, d, (startRow + i) * r.Length, r.Length);
        Set(dst, d);
    }

    public void Patchify(Tensor latents, int p, Tensor patches)
    {
        int c = latents.Shape[0], hl = latents.Shape[1], wl = latents.Shape[2], wt = wl / p;
        float[] z = Get(latents), o = Get(patches);
        for (int h = 0; h < hl / p; h++)
            for (int w = 0; w < wt; w++)
                for (int ph = 0; ph < p; ph++)
                    for (int pw = 0; pw < p; pw++)
                        for (int ch = 0; ch < c; ch++)
                            o[(h * wt + w) * p * p * c + (ph * p + pw) * c + ch] = z[(ch * hl + h * p + ph) * wl + w * p + pw];
        Set(patches, o);
    }

    public void Unpatchify(Tensor patches, int p, Tensor latents)
    {
        int c = latents.Shape[0], hl = latents.Shape[1], wl = latents.Shape[2], wt = wl / p;
        float[] o = Get(patches), z = new float[latents.ElementCount];
        for (int h = 0; h < hl / p; h++)
            for (int w = 0; w < wt; w++)
                for (int ph = 0; ph < p; ph++)
                    for (int pw = 0; pw < p; pw++)
                        for (int ch = 0; ch < c; ch++)
                            z[(ch * hl + h * p + ph) * wl + w * p + pw] = o[(h * wt + w) * p * p * c + (ph * p + pw) * c + ch];
        Set(latents, z);
    }

    public void EulerStep(Tensor latents, Tensor modelOutput, float dt)
    {
        float[] z = Get(latents), m = Get(modelOutput);
        Set(latents, z.Select((v, i) => v + dt * -m[i]).ToArray());
    }

    public void CfgCombine(Tensor positive, Tensor negative, float guidance, float normalization, Tensor prediction)
    {
        float[] p = Get(positive), n = Get(negative);
        var pred = p.Select((v, i) => v + guidance * (v - n[i])).ToArray();
        if (normalization > 0)
        {
            double np = Math.Sqrt(p.Sum(v => (double)v * v)), nq = Math.Sqrt(pred.Sum(v => (double)v * v));
            if (nq > np * normalization) pred = pred.Select(v => (float)(v * (np * normalization / nq))).ToArray();
        }
        Set(prediction, pred);
    }

    public void ToRgb8(Tensor image, Tensor rgb)
    {
        int h = image.Shape[1], w = image.Shape[2];
        float[] x = Get(image);
        var o = new byte[h * w * 3];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < h * w; i++)
                o[i * 3 + c] = (byte)Math.Round(Math.Clamp(x[c * h * w + i] * 0.5f + 0.5f, 0f, 1f) * 255f, MidpointRounding.ToEven);
        rgb.U8.CopyFromCPU(o);
    }

    public void LatentPreview(Tensor latents, Tensor projection, Tensor? bias, Tensor rgb)
    {
        int c = latents.Shape[0], hw = latents.Shape[1] * latents.Shape[2];
        float[] z = Get(latents), pr = Get(projection), b = bias is null ? new float[3] : Get(bias);
        var o = new byte[hw * 3];
        for (int i = 0; i < hw; i++)
            for (int k = 0; k < 3; k++)
            {
                float v = b[k];
                for (int ch = 0; ch < c; ch++) v += z[ch * hw + i] * pr[ch * 3 + k];
                o[i * 3 + k] = (byte)Math.Round(Math.Clamp(v * 0.5f + 0.5f, 0f, 1f) * 255f, MidpointRounding.ToEven);
            }
        rgb.U8.CopyFromCPU(o);
    }

    public void DenormalizeLatents(Tensor latents, float scalingFactor, float shiftFactor, Tensor y) =>
        Set(y, Get(latents).Select(v => v / scalingFactor + shiftFactor).ToArray());

    public void RopeInterleaved(Tensor q, Tensor k, Tensor cos, Tensor sin)
    {
        RopeInterleaved(q, cos, sin);
        RopeInterleaved(k, cos, sin);
    }

    public byte[] DownloadBytes(Tensor src)
    {
        var a = new byte[src.ElementCount];
        src.U8.CopyToCPU(a);
        return a;
    }
}
