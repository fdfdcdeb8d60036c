using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using ZImage.Kernels;
using ZImage.Runtime.Compute;

namespace ZImage.Runtime.Diagnostics;

/// <summary>One check of the doctor: a kernel against its float64 host reference, or a stage of a run.</summary>
/// <param name="Name">What was checked, e.g. <c>gemm_bf16</c>.</param>
/// <param name="Shape">The shape it ran at, e.g. <c>4128x3840->10240</c>.</param>
/// <param name="Ok">Whether it passed.</param>
/// <param name="MaxError">Largest error over the checked outputs, relative to the largest reference magnitude.</param>
/// <param name="Tolerance">The bound <see cref="MaxError"/> must stay under.</param>
/// <param name="Checked">How many output elements were compared (all at small shapes, a random sample at real ones).</param>
/// <param name="Seconds">Wall time of the kernel launch (after a warm-up launch).</param>
/// <param name="Detail">Why it failed, or a note.</param>
internal sealed record DoctorCheck(string Name, string Shape, bool Ok, double MaxError, double Tolerance, int Checked, double Seconds, string? Detail = null);

/// <summary>A throughput figure of the doctor.</summary>
/// <param name="Name">gemm_bf16 or attention.</param>
/// <param name="Shape">The shape timed.</param>
/// <param name="Seconds">Mean seconds per launch.</param>
/// <param name="Tflops">Useful TFLOP/s (2·M·N·K for GEMM, 4·S²·H·Dh for attention).</param>
internal sealed record DoctorThroughput(string Name, string Shape, double Seconds, double Tflops);

/// <summary>The shapes the doctor's kernel checks run at.</summary>
/// <param name="M">GEMM rows (tokens).</param>
/// <param name="K">GEMM inner dimension.</param>
/// <param name="N">GEMM output features.</param>
/// <param name="Seq">Attention tokens.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="HeadDim">Channels per head.</param>
/// <param name="ConvChannels">Conv input and output channels.</param>
/// <param name="ConvSize">Conv feature-map side.</param>
/// <param name="Rows">Norm rows.</param>
/// <param name="Dim">Norm row width.</param>
/// <param name="Samples">Outputs compared per check (0: all).</param>
internal sealed record DoctorShapes(int M, int K, int N, int Seq, int Heads, int HeadDim, int ConvChannels, int ConvSize, int Rows, int Dim, int Samples)
{
    /// <summary>Real Z-Image-Turbo shapes (1024² image: 4096 image + 32 caption tokens, dim 3840, FFN 10240, 30 heads of 128; VAE 512 channels at 128²).</summary>
    public static DoctorShapes Gpu { get; } = new(4128, 3840, 10240, 4128, 30, 128, 512, 128, 4128, 3840, 256);

    /// <summary>Small shapes for ILGPU's CPU accelerator (all outputs compared).</summary>
    public static DoctorShapes Cpu { get; } = new(48, 96, 80, 40, 2, 32, 8, 10, 12, 96, 0);

    /// <summary>The shapes for a device: <see cref="Gpu"/> (real model shapes) on CUDA, <see cref="Cpu"/> otherwise.</summary>
    public static DoctorShapes For(bool isCuda) => isCuda ? Gpu : Cpu;
}

/// <summary>
/// The doctor's kernel section: every kernel family on the selected accelerator against a float64 host reference, on
/// fresh random inputs, with the outputs poisoned (NaN) before each launch so a kernel that skips an element fails.
/// </summary>
internal sealed class DoctorKernelChecks(KernelComputeOps ops, DoctorShapes shapes, int seed)
{
    private const double Fp32Tolerance = 1e-4;
    private readonly Random _rng = new(seed);
    private Accelerator Acc => ops.Context.Accelerator;

    public List<DoctorThroughput> Throughput { get; } = [];

    public List<DoctorCheck> RunAll()
    {
        var checks = new List<DoctorCheck>();
        void Add(Func<DoctorCheck> check, string name)
        {
            try { checks.Add(check()); }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                checks.Add(new DoctorCheck(name, "", false, double.NaN, 0, 0, 0, ex.GetType().Name + ": " + ex.Message));
            }
        }

        Add(() => Gemm(bf16: false), "gemm_f32");
        Add(() => Gemm(bf16: true), "gemm_bf16");
        Add(Attention, "attention");
        Add(Conv3x3, "conv3x3_bf16");
        Add(RmsNorm, "rms_norm");
        Add(GroupNormSilu, "group_norm_silu");
        Add(Elementwise, "silu_tanh_swiglu");
        Add(Transpose, "transpose");
        return checks;
    }

    private DoctorCheck Gemm(bool bf16)
    {
        int m = shapes.M, k = shapes.K, n = shapes.N;
        float[] x = Random(m * k), w = Random(n * k), b = Random(n);
        if (bf16)
            for (int i = 0; i < w.Length; i++) w[i] = Bf16.Round(w[i]);
        using var dx = Up(x);
        using var db = Up(b);
        using var dy = Poisoned(m * n);
        using var dwF = bf16 ? null : Up(w);
        using var dwB = bf16 ? Acc.Allocate1D(w.Select(Bf16.FromFloat).ToArray()) : null;
        void Run()
        {
            if (bf16) ops.Gemm.Linear(dx.View, dwB!.View, db.View, dy.View, m, n, k);
            else ops.Gemm.Linear(dx.View, dwF!.View, db.View, dy.View, m, n, k);
        }

        double seconds = Timed(Run);
        float[] y = dy.GetAsArray1D();
        string name = bf16 ? "gemm_bf16" : "gemm_f32", shape = $"{m}x{k}->{n}";
        if (bf16)
            Throughput.Add(new DoctorThroughput(name, shape, seconds, 2.0 * m * n * k / seconds / 1e12));
        return Compare(name, shape, y, i =>
        {
            int r = i / n, c = i % n;
            double acc = b[c];
            for (int kk = 0; kk < k; kk++) acc += (double)x[r * k + kk] * w[c * k + kk];
            return acc;
        }, Fp32Tolerance, seconds);
    }

    private DoctorCheck Attention()
    {
        int s = shapes.Seq, h = shapes.Heads, d = shapes.HeadDim;
        float scale = 1f / MathF.Sqrt(d);
        float[] q = Random(s * h * d), k = Random(s * h * d), v = Random(s * h * d);
        using var dq = Up(q);
        using var dk = Up(k);
        using var dv = Up(v);
        using var dout = Poisoned(s * h * d);
        double seconds = Timed(() => ops.AttentionKernels.Forward(dq.View, dk.View, dv.View, dout.View, s, s, h, h, d, scale, false));
        float[] o = dout.GetAsArray1D();
        string shape = $"S={s},H={h},Dh={d}";
        Throughput.Add(new DoctorThroughput("attention", shape, seconds, 4.0 * s * s * h * d / seconds / 1e12));
        var scores = new double[s];
        return Compare("attention", shape, o, i =>
        {
            int row = i / (h * d), head = i / d % h, ch = i % d;
            double max = double.NegativeInfinity;
            for (int j = 0; j < s; j++)
            {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += (double)q[(row * h + head) * d + c] * k[(j * h + head) * d + c];
                scores[j] = dot * scale;
                max = Math.Max(max, scores[j]);
            }

            double sum = 0, acc = 0;
            for (int j = 0; j < s; j++)
            {
                double p = Math.Exp(scores[j] - max);
                sum += p;
                acc += p * v[(j * h + head) * d + ch];
            }

            return acc / sum;
        }, Fp32Tolerance, seconds);
    }

    private DoctorCheck Conv3x3()
    {
        int c = shapes.ConvChannels, hw = shapes.ConvSize;
        float[] x = Random(c * hw * hw), w = Random(c * c * 9).Select(Bf16.Round).ToArray(), b = Random(c);
        using var dx = Up(x);
        using var dw = Acc.Allocate1D(w.Select(Bf16.FromFloat).ToArray());
        using var db = Up(b);
        using var dy = Poisoned(c * hw * hw);
        double seconds = Timed(() => ops.Conv.Conv2dBf16(dx.View, dw.View, db.View, dy.View, c, c, hw, hw, 3));
        return Compare("conv3x3_bf16", $"{c}->{c} at {hw}x{hw}", dy.GetAsArray1D(), i =>
        {
            int co = i / (hw * hw), yy = i / hw % hw, xx = i % hw;
            double acc = b[co];
            for (int ci = 0; ci < c; ci++)
                for (int dy2 = -1; dy2 <= 1; dy2++)
                    for (int dx2 = -1; dx2 <= 1; dx2++)
                    {
                        int sy = yy + dy2, sx = xx + dx2;
                        if (sy >= 0 && sy < hw && sx >= 0 && sx < hw)
                            acc += (double)w[((co * c + ci) * 3 + dy2 + 1) * 3 + dx2 + 1] * x[(ci * hw + sy) * hw + sx];
                    }
            return acc;
        }, Fp32Tolerance, seconds);
    }

    private DoctorCheck RmsNorm()
    {
        int rows = shapes.Rows, dim = shapes.Dim;
        float[] x = Random(rows * dim), w = Random(dim);
        using var dx = Up(x);
        using var dw = Up(w);
        using var dy = Poisoned(rows * dim);
        double seconds = Timed(() => ops.Norm.RmsNorm(dx.View, dw.View, 1e-6f, dy.View, rows, dim));
        return Compare("rms_norm", $"{rows}x{dim}", dy.GetAsArray1D(), i =>
        {
            int r = i / dim;
            double ss = 0;
            for (int j = 0; j < dim; j++) ss += (double)x[r * dim + j] * x[r * dim + j];
            return x[i] / Math.Sqrt(ss / dim + 1e-6) * w[i % dim];
        }, Fp32Tolerance, seconds);
    }

    private DoctorCheck GroupNormSilu()
    {
        int c = shapes.ConvChannels, hw = shapes.ConvSize * shapes.ConvSize, groups = Math.Min(32, c);
        float[] x = Random(c * hw), gamma = Random(c), beta = Random(c);
        using var dx = Up(x);
        using var dg = Up(gamma);
        using var dbeta = Up(beta);
        using var dy = Poisoned(c * hw);
        double seconds = Timed(() => ops.Norm.GroupNorm(dx.View, groups, dg.View, dbeta.View, 1e-6f, true, dy.View, c, hw));
        int perGroup = c / groups * hw;
        return Compare("group_norm_silu", $"{groups} groups of {c}x{hw}", dy.GetAsArray1D(), i =>
        {
            int ch = i / hw, g = ch / (c / groups);
            double mean = 0, var = 0;
            for (int j = 0; j < perGroup; j++) mean += x[g * perGroup + j];
            mean /= perGroup;
            for (int j = 0; j < perGroup; j++) var += (x[g * perGroup + j] - mean) * (x[g * perGroup + j] - mean);
            var /= perGroup;
            double v = (x[i] - mean) / Math.Sqrt(var + 1e-6) * gamma[ch] + beta[ch];
            return v / (1 + Math.Exp(-v));
        }, Fp32Tolerance, seconds);
    }

    private DoctorCheck Elementwise()
    {
        int n = shapes.Rows * shapes.Dim;
        float[] a = Random(n, 6f), g = Random(n, 6f);
        using var da = Up(a);
        using var dg = Up(g);
        using var silu = Poisoned(n);
        using var tanh = Poisoned(n);
        using var swiglu = Poisoned(n);
        double seconds = Timed(() =>
        {
            ops.Elementwise.Silu(da.View, silu.View, n);
            ops.Elementwise.Tanh(da.View, tanh.View, n);
            ops.Elementwise.SwiGlu(dg.View, da.View, swiglu.View, n);
        });
        float[] all = [.. silu.GetAsArray1D(), .. tanh.GetAsArray1D(), .. swiglu.GetAsArray1D()];
        return Compare("silu_tanh_swiglu", $"3x{n}", all, i =>
        {
            int part = i / n, j = i % n;
            return part switch
            {
                0 => a[j] / (1 + Math.Exp(-a[j])),
                1 => Math.Tanh(a[j]),
                _ => g[j] / (1 + Math.Exp(-g[j])) * a[j],
            };
        }, 1e-5, seconds);
    }

    private DoctorCheck Transpose()
    {
        int rows = shapes.Rows, cols = shapes.Dim;
        float[] x = Random(rows * cols);
        using var dx = Up(x);
        using var dy = Poisoned(rows * cols);
        var model = new ModelKernels(ops.Context);
        double seconds = Timed(() => model.Transpose2d(dx.View, dy.View, rows, cols));
        return Compare("transpose", $"{rows}x{cols}", dy.GetAsArray1D(), i => x[i % rows * cols + i / rows], 0, seconds);
    }

    private DoctorCheck Compare(string name, string shape, float[] got, Func<int, double> reference, double tolerance, double seconds) =>
        Compare(name, shape, got, reference, tolerance, seconds, shapes.Samples, _rng);

    /// <summary>
    /// Compares <paramref name="got"/> with <paramref name="reference"/> on every element (<paramref name="samples"/> 0)
    /// or a random sample; fails on any non-finite output (the poison left by an unwritten element) or when the largest
    /// error relative to the largest reference magnitude exceeds <paramref name="tolerance"/>.
    /// </summary>
    internal static DoctorCheck Compare(string name, string shape, float[] got, Func<int, double> reference, double tolerance, double seconds, int samples, Random rng)
    {
        int total = got.Length;
        int count = samples == 0 || samples >= total ? total : samples;
        int nonFinite = got.Count(v => !float.IsFinite(v));
        double maxRef = 0, maxErr = 0;
        var refs = new double[count];
        var idx = new int[count];
        for (int s = 0; s < count; s++)
        {
            idx[s] = count == total ? s : rng.Next(total);
            refs[s] = reference(idx[s]);
            maxRef = Math.Max(maxRef, Math.Abs(refs[s]));
        }

        for (int s = 0; s < count; s++)
            maxErr = Math.Max(maxErr, Math.Abs(got[idx[s]] - refs[s]));
        double rel = maxErr / Math.Max(maxRef, 1e-30);
        bool ok = nonFinite == 0 && rel <= tolerance;
        string? detail = nonFinite > 0 ? $"{nonFinite} of {total} outputs not finite (unwritten or overflowed)" : ok ? null : $"error {rel:E2} above {tolerance:E0}";
        return new DoctorCheck(name, shape, ok, rel, tolerance, count, seconds, detail);
    }

    private double Timed(Action launch)
    {
        launch();                       // warm-up (and the checked result: the same inputs give the same outputs)
        ops.Context.Stream.Synchronize();
        var sw = Stopwatch.StartNew();
        launch();
        ops.Context.Stream.Synchronize();
        return sw.Elapsed.TotalSeconds;
    }

    private float[] Random(int n, float range = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(_rng.NextDouble() * 2 - 1) * range;
        return a;
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Up(float[] data) => Acc.Allocate1D(data);

    private MemoryBuffer1D<float, Stride1D.Dense> Poisoned(int n)
    {
        var buffer = Acc.Allocate1D<float>(n);
        buffer.View.MemSet(0xFF);   // all-ones bytes: a NaN in every float
        return buffer;
    }
}
